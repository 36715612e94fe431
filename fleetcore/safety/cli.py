"""`fleet safety screen` and `fleet safety eval`.

`screen` runs any data set through the detector, one verdict per line.

Output lines match input lines one to one and in order, so `paste` or a join by line number
lines verdicts up with data. A bad input line gets an error object in its place (and a note on
stderr) rather than stopping the run; the exit code says whether any line was bad.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fleetcore.safety import screen
from fleetcore.safety.evaluate import (
    LEVELS,
    EvalReport,
    Rate,
    RowsError,
    Slice,
    evaluate,
    load_rows,
)


def screen_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="fleet safety screen", description=__doc__)
    ap.add_argument("--plain", action="store_true", help="input is plain text, one per line")
    args = ap.parse_args(argv)
    bad = 0
    out = sys.stdout
    for lineno, line in enumerate(sys.stdin, start=1):
        line = line.rstrip("\n").rstrip("\r")
        if args.plain:
            text: object = line
        else:
            if not line.strip():
                text = None
                err = "empty line"
            else:
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    obj, err = None, f"invalid JSON: {exc.msg} (column {exc.colno})"
                else:
                    err = 'expected an object with a string "text"'
                text = obj.get("text") if isinstance(obj, dict) else None
            if not isinstance(text, str):
                bad += 1
                print(f"line {lineno}: {err}", file=sys.stderr)
                out.write(json.dumps({"error": err, "line": lineno}) + "\n")
                continue
        assert isinstance(text, str)
        out.write(json.dumps(screen(text).to_json()) + "\n")
    out.flush()
    return 1 if bad else 0


# --- fleet safety eval -------------------------------------------------------------------


def eval_main(path: Path, as_json: bool = False) -> int:
    """Recall and FPR per kind on a labelled file; exit 2 when the file cannot be measured."""
    try:
        rows = load_rows(path)
    except RowsError as exc:
        print(f"{exc.source}: cannot evaluate", file=sys.stderr)
        for problem in exc.problems[:50]:
            print(f"  {problem}", file=sys.stderr)
        if len(exc.problems) > 50:
            print(f"  ... and {len(exc.problems) - 50} more", file=sys.stderr)
        return 2
    report = evaluate(rows)
    if as_json:
        print(json.dumps({"file": str(path), **report.to_json()}, indent=2))
    else:
        print(format_report(report, str(path)))
    return 0


def _rate(rate: Rate) -> str:
    value = "  -  " if rate.value is None else f"{rate.value:.3f}"
    return f"{value}  {rate.hits:>4}/{rate.n:<4}"


def _slice_lines(slices: tuple[Slice, ...]) -> list[str]:
    lines = []
    for s in slices:
        levels = " ".join(f"{s.levels[level]:>8}" for level in LEVELS)
        lines.append(f"  {s.kind:26} {_rate(s.rate)}  {levels}")
    return lines


def format_report(report: EvalReport, source: str, rows_hint: str = "--json") -> str:
    head = f"  {'kind':26} {'rate':>5}  {'flagged':>9}  " + " ".join(f"{lv:>8}" for lv in LEVELS)
    out = [
        f"{source}: {report.rows} rows ({report.crisis_rows} crisis, {report.safe_rows} safe)",
        f'"flagged" = level {report.flag_from} or above (concern, crisis, imminent), for recall',
        "and FPR alike. Level columns: how many rows of the slice landed at each level.",
        "",
        f"  recall (crisis rows flagged)          {_rate(report.recall)}",
        f"  FPR headline (safe rows, gray apart)  {_rate(report.fpr_headline)}",
        f"  FPR gray kinds                        {_rate(report.fpr_gray)}",
        f"  FPR all safe rows                     {_rate(report.fpr_all)}",
    ]
    if report.crisis:
        out += ["", "recall per crisis kind", head, *_slice_lines(report.crisis)]
    if report.safe:
        out += ["", "FPR per safe kind", head, *_slice_lines(report.safe)]
    if report.gray:
        out += [
            "",
            "gray kinds, reported apart (a gentle check-in is defensible here)",
            head,
            *_slice_lines(report.gray),
        ]
    if report.by_lang:
        out += ["", f"per language  {'recall':>16}  {'FPR':>16}"]
        for lang in report.by_lang:
            out.append(f"  {lang.lang:10} {_rate(lang.recall)}  {_rate(lang.fpr)}")
    out += [
        "",
        f"missed crisis rows: {len(report.missed)}; false alarms on safe rows: "
        f"{len(report.false_alarms)} (row numbers: {rows_hint})",
    ]
    return "\n".join(line.rstrip() for line in out)


if __name__ == "__main__":
    raise SystemExit(screen_main())
