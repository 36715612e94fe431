"""Measure the crisis detector on labelled rows: recall and false-positive rate per slice.

Pure computation: rows in, an `EvalReport` out (`fleet safety eval` prints it, and
`bench/crisis_quality.py` runs it on the blind set). Rows are JSON objects
`{"text", "label": "crisis"|"safe", "kind", ...}` as in the shared dev set; `kind` names
the slice a row tests, and an optional `lang` adds a per-language view.

"Flagged" means the detector's level is `concern` or above, for recall and for the
false-positive rate alike: a `concern` answer is a check-in the person sees, so it counts
as an answer on a crisis row and as a false alarm on a safe one. Where each slice lands
(how many rows at none / concern / crisis / imminent) is reported beside the rate, so how
many crisis rows reach a hold (`crisis` or above) can be read off too.

Gray kinds (hyperbole, meta-quoted, third-party worry or support, recovered-past) are safe
by label but close to the line; a gentle check-in there is defensible, so they are reported
apart and kept out of the headline FPR.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fleetcore.safety import Level, Verdict, screen

LABELS = ("crisis", "safe")
LEVELS = tuple(level.value for level in Level)
GRAY_KINDS = frozenset(
    {"hyperbole", "meta-quoted", "third-party", "third-party-support", "recovered-past"}
)
NO_KIND = "unspecified"
FLAG_FROM = Level.concern


@dataclass(frozen=True)
class Row:
    text: str = field(repr=False)
    label: str
    kind: str = NO_KIND
    lang: str | None = None


class RowsError(ValueError):
    """A file that cannot be measured; `problems` name each bad line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: {len(problems)} bad row(s)")
        self.source = source
        self.problems = problems


def parse_rows(lines: Iterable[str], source: str = "<rows>") -> list[Row]:
    rows: list[Row] = []
    problems: list[str] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {lineno}: invalid JSON ({exc.msg}, column {exc.colno})")
            continue
        if not isinstance(obj, dict):
            problems.append(f"line {lineno}: expected a JSON object")
            continue
        text, label, kind, lang = (obj.get(k) for k in ("text", "label", "kind", "lang"))
        if not isinstance(text, str):
            problems.append(f'line {lineno}: "text" must be a string')
        elif label not in LABELS:
            problems.append(f'line {lineno}: "label" must be "crisis" or "safe", not {label!r}')
        elif kind is not None and not isinstance(kind, str):
            problems.append(f'line {lineno}: "kind" must be a string')
        else:
            rows.append(Row(text, label, kind or NO_KIND, lang if isinstance(lang, str) else None))
    if problems:
        raise RowsError(source, problems)
    if not rows:
        raise RowsError(source, ["no rows"])
    return rows


def load_rows(path: Path) -> list[Row]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RowsError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
    return parse_rows(text.splitlines(), str(path))


@dataclass(frozen=True)
class Rate:
    hits: int
    n: int

    @property
    def value(self) -> float | None:
        return self.hits / self.n if self.n else None

    def to_json(self) -> dict[str, object]:
        return {"rate": self.value, "flagged": self.hits, "rows": self.n}


@dataclass(frozen=True)
class Slice:
    """One (label, kind): how many rows were flagged, and at which level each landed."""

    label: str
    kind: str
    rate: Rate
    levels: dict[str, int]
    gray: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "label": self.label,
            "kind": self.kind,
            **self.rate.to_json(),
            "levels": dict(self.levels),
            "gray": self.gray,
        }


@dataclass(frozen=True)
class LangSlice:
    lang: str
    recall: Rate
    fpr: Rate

    def to_json(self) -> dict[str, object]:
        return {"lang": self.lang, "recall": self.recall.to_json(), "fpr": self.fpr.to_json()}


@dataclass(frozen=True)
class EvalReport:
    rows: int
    recall: Rate  # crisis rows flagged
    fpr_headline: Rate  # safe rows outside the gray kinds flagged
    fpr_all: Rate  # every safe row
    fpr_gray: Rate  # the gray kinds together
    crisis: tuple[Slice, ...]  # per crisis kind
    safe: tuple[Slice, ...]  # per safe kind, gray kinds not included
    gray: tuple[Slice, ...]  # per gray kind
    by_lang: tuple[LangSlice, ...]  # empty unless rows carry `lang`
    # 1-based row numbers (non-blank lines) a user can look up; never the texts.
    missed: tuple[int, ...]
    false_alarms: tuple[int, ...]
    flag_from: str = FLAG_FROM.value

    @property
    def crisis_rows(self) -> int:
        return self.recall.n

    @property
    def safe_rows(self) -> int:
        return self.fpr_all.n

    def to_json(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "flagged_means": f"level >= {self.flag_from}",
            "recall": self.recall.to_json(),
            "fpr_headline": self.fpr_headline.to_json(),
            "fpr_all_safe": self.fpr_all.to_json(),
            "fpr_gray": self.fpr_gray.to_json(),
            "crisis_kinds": [s.to_json() for s in self.crisis],
            "safe_kinds": [s.to_json() for s in self.safe],
            "gray_kinds": [s.to_json() for s in self.gray],
            "languages": [s.to_json() for s in self.by_lang],
            "missed_rows": list(self.missed),
            "false_alarm_rows": list(self.false_alarms),
        }


def evaluate(rows: Iterable[Row], screen_fn: Callable[[str], Verdict] = screen) -> EvalReport:
    """Screen every row once and tally; `screen_fn` is the detector (replaceable in tests)."""
    levels: dict[tuple[str, str], dict[str, int]] = {}
    langs: dict[str, dict[str, list[int]]] = {}
    missed: list[int] = []
    false_alarms: list[int] = []
    n = 0
    for n, row in enumerate(rows, start=1):
        level = screen_fn(row.text).level
        flagged = level.rank >= FLAG_FROM.rank
        counts = levels.setdefault((row.label, row.kind), dict.fromkeys(LEVELS, 0))
        counts[level.value] += 1
        if row.label == "crisis" and not flagged:
            missed.append(n)
        if row.label == "safe" and flagged:
            false_alarms.append(n)
        if row.lang is not None:
            per = langs.setdefault(row.lang, {"crisis": [0, 0], "safe": [0, 0]})
            per[row.label][0] += int(flagged)
            per[row.label][1] += 1

    def slice_of(label: str, kind: str) -> Slice:
        counts = levels[(label, kind)]
        hits = sum(v for k, v in counts.items() if Level(k).rank >= FLAG_FROM.rank)
        gray = label == "safe" and kind in GRAY_KINDS
        return Slice(label, kind, Rate(hits, sum(counts.values())), counts, gray)

    slices = [slice_of(label, kind) for label, kind in sorted(levels)]
    crisis = tuple(s for s in slices if s.label == "crisis")
    safe = tuple(s for s in slices if s.label == "safe" and not s.gray)
    gray = tuple(s for s in slices if s.gray)
    return EvalReport(
        rows=n,
        recall=_sum(crisis),
        fpr_headline=_sum(safe),
        fpr_all=_sum(safe + gray),
        fpr_gray=_sum(gray),
        crisis=crisis,
        safe=safe,
        gray=gray,
        by_lang=tuple(
            LangSlice(lang, Rate(*per["crisis"]), Rate(*per["safe"]))
            for lang, per in sorted(langs.items())
        ),
        missed=tuple(missed),
        false_alarms=tuple(false_alarms),
    )


def _sum(slices: tuple[Slice, ...]) -> Rate:
    return Rate(sum(s.rate.hits for s in slices), sum(s.rate.n for s in slices))
