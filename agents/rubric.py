"""The quality bar a wolf's triage must clear before anything is posted to Gitea.

A triage comment that invents evidence is worse than none: maintainers act on it. So the
model must quote the issue word for word, and every quote is checked against the issue's
own text; a reply that fails gets one repair attempt, then nothing is posted.

Models decorate their answers (headings, bold, bullets, blockquotes, curly quotes), so the
parser is tolerant of Markdown while the checks stay strict. Pure: no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Confidence = Literal["low", "medium", "high"]
CONFIDENCES: tuple[Confidence, ...] = ("low", "medium", "high")

# A quote shorter than this ("yes", "bug") matches almost any issue and proves nothing.
MIN_QUOTE_CHARS = 6
# How much of a rejected quote a problem line shows.
PROBLEM_QUOTE_CHARS = 60

RUBRIC_INSTRUCTIONS = """\
Answer in exactly this shape, and nothing else:

Evidence:
- "an exact quote from the issue or its comments" (optional short note)
Recommended next action: one sentence
Confidence: low|medium|high

Rules:
- Each evidence line starts with a quote copied word for word from the issue or its
  comments, in double quotes. Quote at least a few words; never paraphrase, never invent.
- Give one to three quotes: the ones that justify your recommendation.
- The recommended next action is one concrete sentence (for example: ask for the version
  and steps to reproduce; label as duplicate of #12; fix the null check in parse()).
- Confidence is one word: low, medium or high. Say low when the issue is unclear or you
  are guessing; a person will then look at it."""

_QUOTE_CHARS = str.maketrans(
    {
        "\u201c": '"',  # “
        "\u201d": '"',  # ”
        "\u201e": '"',  # „
        "\u201f": '"',  # ‟
        "\u2033": '"',  # ″
        "\u00ab": '"',  # «
        "\u00bb": '"',  # »
        "\u2018": "'",  # ‘
        "\u2019": "'",  # ’
        "\u201a": "'",  # ‚
        "\u201b": "'",  # ‛
        "\u2032": "'",  # ′
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",  # –
        "\u2014": "-",  # —
        "\u2212": "-",
        "\u2026": "...",  # …
    }
)

_HEADINGS: dict[str, tuple[str, ...]] = {
    "evidence": ("evidence",),
    "action": (
        "recommended next action",
        "recommended next step",
        "recommended action",
        "next action",
        "next step",
    ),
    "confidence": ("confidence", "confidence level"),
}
_HEADING_RE = re.compile(
    r"^(?P<name>"
    + "|".join(
        re.escape(alias).replace(r"\ ", r"\s+")
        for aliases in _HEADINGS.values()
        for alias in sorted(aliases, key=len, reverse=True)
    )
    + r")\s*(?P<colon>:)?\s*(?P<rest>.*)$",
    re.IGNORECASE,
)
_BULLET_RE = re.compile(r"^(?:[-*+\u2022]|\d{1,3}[.)])\s+")
_FENCE_RE = re.compile(r"^\s*(```|~~~)")
_QUOTED_RE = re.compile(r'"([^"]+)"|`([^`]+)`')
_SINGLE_QUOTED_RE = re.compile(r"^'(.+?)'(?=\s|$|[.,;:)(\-])")
_CONFIDENCE_RE = re.compile(r"^(low|medium|high)(?![\w/-])", re.IGNORECASE)
_MARKER_RE = re.compile(r"<!--\s*fleet-task:\s*([^\s<>]+)\s*-->")


@dataclass(frozen=True)
class Evidence:
    quote: str
    note: str = ""


@dataclass(frozen=True)
class Triage:
    """What the parser found; empty strings and None for what it did not."""

    evidence: tuple[Evidence, ...] = ()
    next_action: str = ""
    confidence: Confidence | None = None
    # The confidence as written, for the problem message when it is not a valid level.
    confidence_text: str = ""
    sections: frozenset[str] = frozenset()
    # Evidence lines without any quote (paraphrases): kept for logs, never evidence.
    unquoted: tuple[str, ...] = ()

    @property
    def quotes(self) -> list[str]:
        return [e.quote for e in self.evidence]

    @property
    def low_confidence(self) -> bool:
        return self.confidence == "low"


@dataclass(frozen=True)
class RubricResult:
    ok: bool
    problems: list[str] = field(default_factory=list)
    triage: Triage = field(default_factory=Triage)

    @property
    def low_confidence(self) -> bool:
        return self.triage.low_confidence


def normalise(text: str) -> str:
    """The form quotes and sources are compared in.

    Case, runs of whitespace, curly vs straight quotes, dash variants and Markdown emphasis
    or code marks are all things a model changes without changing what was said.
    """
    text = unicodedata.normalize("NFKC", text).translate(_QUOTE_CHARS)
    text = re.sub(r"[`*]", "", text)
    text = re.sub(r"-{2,}", "-", text)  # "--" typed, "—" rendered
    return re.sub(r"\s+", " ", text).strip().casefold()


def _clean_line(line: str) -> str:
    """A line without heading marks, bullets or emphasis around the heading word."""
    line = line.strip()
    line = re.sub(r"^#{1,6}\s*", "", line)
    line = _BULLET_RE.sub("", line)
    # **Evidence:** / __Evidence__: / *Confidence*: -> plain.
    line = re.sub(r"^(\*\*|__|\*|_)(.+?)\1", r"\2", line)
    return line.strip()


def _heading(line: str) -> tuple[str, str] | None:
    """(section, text after the heading) if the line opens a section.

    A bare word at the start of a sentence ("Evidence suggests...") is not a heading: it
    must be followed by a colon, stand alone, or have been marked up as a heading.
    """
    stripped = line.strip()
    if stripped.startswith(">"):
        return None
    marked = bool(re.match(r"^(#{1,6}\s|(?:[-*+]\s+)?(\*\*|__))", stripped))
    cleaned = _clean_line(stripped)
    match = _HEADING_RE.match(cleaned)
    if match is None:
        return None
    rest = match.group("rest").strip()
    if not (match.group("colon") or not rest or marked):
        return None
    rest = re.sub(r"^[:*_\s]+", "", rest)  # "**Confidence**: high", "Evidence:** x"
    name = re.sub(r"\s+", " ", match.group("name").lower())
    for section, aliases in _HEADINGS.items():
        if name in aliases:
            return section, rest
    return None  # pragma: no cover - the regex only matches known aliases


def _strip_emphasis(text: str) -> str:
    return re.sub(r"(\*\*|__)", "", text).strip()


def _note(rest: str) -> str:
    rest = rest.strip()
    rest = re.sub(r"^[\s\-:,;.]+", "", rest)
    if rest.startswith("(") and rest.endswith(")"):
        rest = rest[1:-1]
    return _strip_emphasis(rest).strip()


def _evidence_items(lines: list[str]) -> tuple[list[Evidence], list[str]]:
    """Quotes from an Evidence section: quoted text in bullets, or blockquote lines."""
    found: list[Evidence] = []
    unquoted: list[str] = []
    block: list[str] = []

    def flush_block() -> None:
        if block:
            found.append(Evidence(" ".join(block)))
            block.clear()

    for raw in lines:
        line = raw.strip()
        if not line:
            flush_block()
            continue
        bullet_free = _BULLET_RE.sub("", line)
        if bullet_free.startswith(">"):
            text = bullet_free.lstrip(">").strip()
            if _strip_emphasis(text).translate(_QUOTE_CHARS)[:1] in ('"', "`"):
                flush_block()  # > "quote" (note): the marks delimit the quote
                found.extend(_quotes_in(text))
            elif text:
                block.append(_strip_emphasis(text))  # the blockquote itself is the quote
            continue
        flush_block()
        items = _quotes_in(bullet_free)
        if items:
            found.extend(items)
        elif bullet_free:
            unquoted.append(bullet_free)
    flush_block()
    return found, unquoted


def _quotes_in(text: str) -> list[Evidence]:
    """The quoted text in one evidence line, with the note that follows it.

    A line that opens with a quote mark runs to the last matching mark, so a quote that
    itself contains quotes (`"click "Save" and it hangs"`) stays whole; `check_triage`
    splits it again if it was really two quotes on one line.
    """
    text = _strip_emphasis(text).translate(_QUOTE_CHARS)
    if text[:1] in ('"', "`"):
        end = text.rfind(text[0])
        if end > 0:
            return [Evidence(text[1:end].strip(), _note(text[end + 1 :]))]
    single = _SINGLE_QUOTED_RE.match(text)
    if single is not None:
        return [Evidence(single.group(1).strip(), _note(text[single.end() :]))]
    matches = list(_QUOTED_RE.finditer(text))
    out = []
    for i, m in enumerate(matches):
        quote = (m.group(1) or m.group(2) or "").strip()
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        out.append(Evidence(quote, _note(text[m.end() : end])))
    return out


def parse_triage(reply: str) -> Triage:
    sections: dict[str, list[str]] = {}
    order: list[str] = []
    current: str | None = None
    for raw in reply.splitlines():
        if _FENCE_RE.match(raw):
            continue  # a reply wrapped in a code block
        head = _heading(raw)
        if head is not None:
            current, rest = head
            if current not in sections:
                sections[current] = []
                order.append(current)
            if rest:
                sections[current].append(rest)
            continue
        if current is not None:
            sections[current].append(raw)

    evidence, unquoted = _evidence_items(sections.get("evidence", []))
    action_lines = [
        _strip_emphasis(_BULLET_RE.sub("", ln.strip())) for ln in sections.get("action", [])
    ]
    next_action = " ".join(ln for ln in action_lines if ln).strip()
    conf_lines = [_strip_emphasis(ln.strip()) for ln in sections.get("confidence", [])]
    confidence_text = next((ln for ln in conf_lines if ln), "")
    level = _CONFIDENCE_RE.match(re.sub(r"^[*_`\s]+", "", confidence_text))
    confidence: Confidence | None = None
    if level is not None:
        confidence = level.group(1).lower()  # type: ignore[assignment]
    return Triage(
        evidence=tuple(evidence),
        next_action=next_action,
        confidence=confidence,
        confidence_text=confidence_text,
        sections=frozenset(order),
        unquoted=tuple(unquoted),
    )


def _short(text: str, limit: int = PROBLEM_QUOTE_CHARS) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _trim_punctuation(text: str) -> str:
    return text.strip().strip(".,;:!?").strip()


def quote_found(quote: str, sources: Sequence[str]) -> bool:
    """Whether `quote` appears in one source, after normalising both.

    An elision ("the app ... crashes") is allowed: each part must appear in that source,
    in order. Punctuation at the quote's ends is ignored, as models add or drop it.
    """
    parts = [
        _trim_punctuation(p) for p in re.split(r"\.\.\.+", normalise(quote).translate(_QUOTE_CHARS))
    ]
    parts = [p for p in parts if p]
    if not parts:
        return False
    for source in sources:
        haystack = normalise(source)
        at = 0
        for part in parts:
            hit = haystack.find(part, at)
            if hit < 0:
                break
            at = hit + len(part)
        else:
            return True
    return False


def _quote_length(quote: str) -> int:
    return len(re.sub(r"\.\.\.+|…", "", _trim_punctuation(normalise(quote))).strip())


def _split_quotes(e: Evidence) -> list[Evidence]:
    """`a" and "b` (two quotes read as one): the quoted parts, the short ones dropped.

    The note is dropped too: which part it belonged to can no longer be told.
    """
    if '"' not in e.quote:
        return []
    parts = [p.strip() for p in re.findall(r'"([^"]*)"', f'"{e.quote}"')]
    kept = [p for p in parts if _quote_length(p) >= MIN_QUOTE_CHARS]
    if not kept:
        return []
    return [Evidence(p) for p in kept]


def check_triage(reply: str, sources: Sequence[str]) -> RubricResult:
    triage = parse_triage(reply)
    problems: list[str] = []
    if "evidence" not in triage.sections:
        problems.append("missing Evidence")
    else:
        texts = [s for s in sources if s]
        real: list[Evidence] = []
        for e in triage.evidence:
            if _quote_length(e.quote) < MIN_QUOTE_CHARS:
                continue
            if quote_found(e.quote, texts):
                real.append(e)
                continue
            parts = _split_quotes(e)
            if parts and all(quote_found(p.quote, texts) for p in parts):
                real.extend(parts)
            else:
                real.append(e)
                problems.append(f"evidence not found in the issue: '{_short(e.quote)}'")
        if not real:
            problems.append("no quoted evidence")
        triage = Triage(
            evidence=tuple(real),
            next_action=triage.next_action,
            confidence=triage.confidence,
            confidence_text=triage.confidence_text,
            sections=triage.sections,
            unquoted=triage.unquoted,
        )
    if not triage.next_action:
        problems.append("missing Recommended next action")
    if "confidence" not in triage.sections:
        problems.append("missing Confidence")
    elif triage.confidence is None:
        problems.append("confidence must be low, medium or high")
    return RubricResult(ok=not problems, problems=problems, triage=triage)


def repair_prompt(problems: Sequence[str]) -> str:
    """The one follow-up a wolf sends when a reply fails the rubric."""
    listed = "\n".join(f"- {p}" for p in problems)
    return (
        "Your answer cannot be posted yet; it failed these checks:\n"
        f"{listed}\n\n"
        "Quote only text that appears word for word in the issue or its comments (copy it, "
        "do not retype or paraphrase it); drop any evidence you cannot quote exactly.\n\n"
        f"{RUBRIC_INSTRUCTIONS}"
    )


def task_marker(task_id: str) -> str:
    if not re.fullmatch(r"[^\s<>]+", task_id):
        raise ValueError(f"task id {task_id!r} cannot go in a marker")
    return f"<!-- fleet-task: {task_id} -->"


def find_task_marker(body: str) -> str | None:
    """The task id in a comment posted by `format_comment`, if any.

    Only trust it on comments written by the fleet's own Gitea users: anyone can type a
    marker. Model-written text never carries one (`format_comment` escapes `<`).
    """
    match = _MARKER_RE.search(body)
    return match.group(1) if match else None


def _safe(text: str) -> str:
    """Model or issue text, made inert: no HTML (so no fake markers), no stray newlines."""
    text = re.sub(r"\s+", " ", text).strip()
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def format_comment(
    triage: Triage, task_id: str, provider: str | None, model: str | None, wolf: str
) -> str:
    lines = ["**Triage**", "", "**Evidence**", ""]
    for e in triage.evidence:
        lines.append(f"> {_safe(e.quote)}")
        if e.note:
            lines.append(f"> — {_safe(e.note)}")
        lines.append("")
    lines.append(f"**Recommended next action:** {_safe(triage.next_action)}")
    lines.append("")
    lines.append(f"**Confidence:** {triage.confidence or 'unknown'}")
    lines.append("")
    lines.append("---")
    lines.append(
        f"<sub>Automated triage by wolf `{_code(wolf)}` using model `{_code(model or 'unknown')}`"
        f" from provider `{_code(provider or 'unknown')}`. Quotes are checked against the issue;"
        " the recommendation is the model's.</sub>"
    )
    lines.append(task_marker(task_id))
    return "\n".join(lines)


def _code(text: str) -> str:
    return text.replace("`", "'").replace("\n", " ")
