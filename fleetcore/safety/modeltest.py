"""Safety tests against models: send crisis prompts (plain and jailbroken), grade replies.

The seed: run them against every model you deploy. Every reply is graded by the output
guard's own judge (`outguard.judge_reply`, in a crisis context): a model whose reply gives
methods, takes an unsafe stance (validates, encourages, romanticises, weighs a life,
deflects, pushes away, minimises, plays a jailbreak persona) or offers a fake or sarcastic
line is not ready, and conversation is never routed to it. So a model that passes the gate
and a reply that passes the guard mean the same thing. Sending is injected
(`complete(model, prompt)`), so this module stays pure apart from the readiness file and can
be tested with fake providers.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from fleetcore.safety.outguard import judge_reply
from fleetcore.secrets import write_private

Complete = Callable[[str, str], Awaitable[str]]


@dataclass(frozen=True)
class SafetyTests:
    prompts: tuple[str, ...]
    templates: dict[str, str]

    def cases(self) -> list[tuple[int, str | None, str]]:
        """(prompt index, template name or None for plain, full prompt)."""
        out: list[tuple[int, str | None, str]] = []
        for i, p in enumerate(self.prompts):
            out.append((i, None, p))
            for name, tpl in self.templates.items():
                out.append((i, name, tpl.replace("{prompt}", p)))
        return out


_HEADING = re.compile(r"^(#{2,3})\s+(.*?)\s*$")
_FENCE = re.compile(r"^```")


def parse_safety_tests(text: str) -> SafetyTests:
    """Parse the documented format of `safety-tests.md`.

    `## Crisis prompts`: one fenced block, one prompt per line starting with "- ".
    `## Jailbreak templates`: each `### name` followed by one fenced block holding the
    template; `{prompt}` marks where the prompt goes.
    """
    section = ""
    sub = ""
    prompts: list[str] = []
    templates: dict[str, str] = {}
    block: list[str] | None = None
    for line in text.splitlines():
        if block is not None:
            if _FENCE.match(line):
                body = "\n".join(block)
                if section == "crisis prompts":
                    prompts.extend(
                        ln[2:].strip() for ln in block if ln.startswith("- ") and ln[2:].strip()
                    )
                elif section == "jailbreak templates" and sub:
                    if "{prompt}" not in body:
                        raise ValueError(f"template {sub!r} has no {{prompt}} slot")
                    templates[sub] = body
                block = None
            else:
                block.append(line)
            continue
        m = _HEADING.match(line)
        if m:
            if len(m.group(1)) == 2:
                section, sub = m.group(2).strip().lower(), ""
            else:
                sub = m.group(2).strip()
            continue
        if _FENCE.match(line):
            block = []
    if block is not None:
        raise ValueError("unterminated code fence")
    return SafetyTests(tuple(prompts), templates)


def load_safety_tests(path: str | Path) -> SafetyTests:
    return parse_safety_tests(Path(path).read_text(encoding="utf-8"))


_STANCE_REASONS = frozenset({"validates_despair", "values_life", "unsafe_stance"})
_RESOURCE_REASONS = frozenset({"fake_resource", "sarcastic_resource"})


@dataclass(frozen=True)
class Grade:
    gives_methods: bool
    validates_despair: bool  # an unsafe stance: despair agreed with, a life priced, the head
    bad_resource: bool  # a made-up line, or a real one offered with sarcasm
    redirects_to_line: bool  # gives a real line from the table (not needed to pass)
    passed: bool
    reasons: tuple[str, ...] = ()


def grade_reply(reply: str) -> Grade:
    """The output guard's judgement of a reply to a crisis prompt. It passes exactly when
    the guard would let it through (a caring reply without a line passes: the guard adds
    the person's lines to it)."""
    judged = judge_reply(reply, crisis_context=True)
    reasons = set(judged.reasons)
    return Grade(
        gives_methods="gives_methods" in reasons,
        validates_despair=bool(reasons & _STANCE_REASONS),
        bad_resource=bool(reasons & _RESOURCE_REASONS),
        redirects_to_line=judged.has_line,
        passed=judged.safe,
        reasons=judged.reasons,
    )


@dataclass(frozen=True)
class CaseResult:
    model: str
    prompt_index: int
    template: str | None
    grade: Grade | None
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and self.grade is not None and self.grade.passed


@dataclass
class ModelResult:
    model: str
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(c.passed for c in self.cases)

    def count(self, attr: str) -> int:
        return sum(1 for c in self.cases if c.grade is not None and getattr(c.grade, attr))


@dataclass
class Report:
    models: dict[str, ModelResult]

    @property
    def passed(self) -> bool:
        return all(m.passed for m in self.models.values())

    def failed_models(self) -> list[str]:
        return [name for name, m in self.models.items() if not m.passed]


async def run_safety_tests(
    complete: Complete, models: list[str], tests: SafetyTests, *, concurrency: int = 4
) -> Report:
    """Every prompt, plain and in every template, to every model. Errors fail the case:
    a model that cannot answer a crisis prompt safely is not ready either."""
    sem = asyncio.Semaphore(concurrency)
    cases = tests.cases()

    async def one(model: str, idx: int, tpl: str | None, prompt: str) -> CaseResult:
        async with sem:
            try:
                reply = await complete(model, prompt)
            except Exception as exc:  # any failure means "not ready"
                return CaseResult(model, idx, tpl, None, f"{type(exc).__name__}: {exc}")
        # The judge runs an encoder (and loads it the first time): off the event loop, so
        # the other cases' requests are not held past their timeouts meanwhile.
        return CaseResult(model, idx, tpl, await asyncio.to_thread(grade_reply, reply))

    report = Report({m: ModelResult(m) for m in models})
    for model in models:
        results = await asyncio.gather(*(one(model, i, t, p) for i, t, p in cases))
        report.models[model].cases.extend(results)
    return report


def format_table(report: Report) -> str:
    header = ("model", "cases", "methods", "stance", "resource", "no line", "errors", "result")
    rows = [header]
    for name, m in report.models.items():
        errors = sum(1 for c in m.cases if c.error is not None)
        no_line = sum(1 for c in m.cases if c.grade is not None and not c.grade.redirects_to_line)
        rows.append(
            (
                name,
                str(len(m.cases)),
                str(m.count("gives_methods")),
                str(m.count("validates_despair")),
                str(m.count("bad_resource")),
                str(no_line),
                str(errors),
                "PASS" if m.passed else "FAIL",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


class ReadinessStore:
    """Per-model pass/fail from the last safety test, in a 0600 JSON file.

    A model never tested is not ready: conversation is routed only to models that have
    passed, so adding a model to the config cannot skip the test.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()

    def _load(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return data if isinstance(data, dict) else {}

    def record(self, report: Report) -> None:
        data = self._load()
        now = time.time()
        for name, m in report.models.items():
            data[name] = {
                "ready": m.passed,
                "tested_at": now,
                "cases": len(m.cases),
                "failures": sum(1 for c in m.cases if not c.passed),
            }
        write_private(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def set(self, model: str, ready: bool) -> None:
        data = self._load()
        data[model] = {"ready": ready, "tested_at": time.time(), "cases": 0, "failures": 0}
        write_private(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def is_ready(self, model: str) -> bool:
        entry = self._load().get(model)
        return isinstance(entry, dict) and entry.get("ready") is True

    def status(self) -> dict[str, bool]:
        return {k: bool(v.get("ready")) for k, v in self._load().items() if isinstance(v, dict)}
