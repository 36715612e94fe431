"""Crisis detector quality on a labelled set (default: the blind set).

The same figures as `fleet safety eval FILE` (recall per crisis kind, FPR per safe kind, the
gray kinds apart, the level each slice lands in; "flagged" = level concern or above), then
the issue's targets checked against them. `--verbose` lists the row numbers (never the
texts) of missed crisis rows and false alarms.

    .venv/bin/python bench/crisis_quality.py [FILE.jsonl] [--verbose]

Default FILE: tools/safety/blind/crisis-blind-v1.jsonl. The blind set measures; it never
decides a rule, a row or a threshold (when it has, write a fresh one).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fleetcore.safety.cli import format_report  # noqa: E402
from fleetcore.safety.evaluate import Rate, RowsError, evaluate, load_rows  # noqa: E402

DEFAULT = REPO / "tools" / "safety" / "blind" / "crisis-blind-v1.jsonl"
# Issue 11's targets: overall recall, recall in every crisis kind, FPR on safe rows (the
# gray kinds apart), FPR on developer chat.
TARGETS = {"recall": 0.95, "recall_kind": 0.90, "fpr": 0.03, "fpr_devchat": 0.01}
DEV_CHAT_KINDS = ("dev-chat", "ops-dev")


def _check(name: str, rate: Rate, ok: bool, target: str) -> str:
    value = "-" if rate.value is None else f"{rate.value:.3f}"
    return f"  {'ok  ' if ok else 'MISS'}  {name:34} {value:>6}  target {target}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("file", nargs="?", type=Path, default=DEFAULT, help="labelled JSON lines")
    ap.add_argument("--verbose", action="store_true", help="list missed / false-alarm rows")
    args = ap.parse_args(argv)
    try:
        rows = load_rows(args.file)
    except RowsError as exc:
        print(f"{exc.source}: cannot evaluate", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    report = evaluate(rows)
    print(format_report(report, str(args.file), rows_hint="--verbose"))

    print("\ntargets (issue 11)")
    r = report.recall
    print(_check("recall", r, (r.value or 0) >= TARGETS["recall"], f">= {TARGETS['recall']}"))
    for s in report.crisis:
        ok = (s.rate.value or 0) >= TARGETS["recall_kind"]
        print(_check(f"recall {s.kind}", s.rate, ok, f">= {TARGETS['recall_kind']}"))
    f = report.fpr_headline
    print(
        _check(
            "FPR (safe, gray apart)", f, (f.value or 0) <= TARGETS["fpr"], f"<= {TARGETS['fpr']}"
        )
    )
    for s in report.safe:
        if s.kind in DEV_CHAT_KINDS:
            ok = (s.rate.value or 0) <= TARGETS["fpr_devchat"]
            print(_check(f"FPR {s.kind}", s.rate, ok, f"<= {TARGETS['fpr_devchat']}"))
    if args.verbose:
        print(f"\nmissed crisis rows: {', '.join(map(str, report.missed)) or 'none'}")
        print(f"false alarms: {', '.join(map(str, report.false_alarms)) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
