"""Crisis detector quality on the labelled dev set.

Prints recall on crisis rows and false-positive rate on safe rows, overall and per `kind`;
the gray slices (hyperbole, meta-quoted, third-party-support) separately; and the headline
FPR on dev-chat + benign-violent-word + prevention-discussion. `--verbose` lists the indices
(never the texts) of misclassified rows.

    .venv/bin/python bench/crisis_quality.py [--data PATH] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fleetcore.safety import screen  # noqa: E402

GRAY = ("hyperbole", "meta-quoted", "third-party-support")
HEADLINE = ("dev-chat", "benign-violent-word", "prevention-discussion")
TARGETS = {"recall": 0.98, "recall_kind": 0.95, "fpr": 0.02, "fpr_devchat": 0.01}


def evaluate(rows: list[dict[str, str]]) -> dict[str, object]:
    by_kind: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    wrong: list[int] = []
    for i, row in enumerate(rows):
        flagged = screen(row["text"]).is_crisis
        key = (row["label"], row["kind"])
        by_kind[key][0] += int(flagged)
        by_kind[key][1] += 1
        if flagged != (row["label"] == "crisis"):
            wrong.append(i)
    return {"by_kind": dict(by_kind), "wrong": wrong}


def _rate(pairs: list[list[int]]) -> tuple[float, int, int]:
    hit = sum(p[0] for p in pairs)
    n = sum(p[1] for p in pairs)
    return (hit / n if n else 0.0), hit, n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "crisis" / "dev.jsonl")
    ap.add_argument("--verbose", action="store_true", help="list misclassified row indices")
    args = ap.parse_args(argv)
    rows = [
        json.loads(line)
        for line in args.data.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    res = evaluate(rows)
    by_kind: dict[tuple[str, str], list[int]] = res["by_kind"]  # type: ignore[assignment]

    crisis = [v for (label, _), v in by_kind.items() if label == "crisis"]
    safe = [v for (label, _), v in by_kind.items() if label == "safe"]
    r, rh, rn = _rate(crisis)
    f, fh, fn = _rate(safe)
    print(f"rows: {len(rows)} ({rn} crisis, {fn} safe)")
    print(f"recall (crisis rows)      {r:.3f}  ({rh}/{rn})   target >= {TARGETS['recall']}")
    print(f"FPR (all safe rows)       {f:.3f}  ({fh}/{fn})   target <= {TARGETS['fpr']}")
    hl, hh, hn = _rate([v for (lb, k), v in by_kind.items() if lb == "safe" and k in HEADLINE])
    print(f"FPR headline ({' + '.join(HEADLINE)})  {hl:.3f}  ({hh}/{hn})")
    print("\nrecall per crisis kind:")
    for (label, kind), (hit, n) in sorted(by_kind.items()):
        if label == "crisis":
            print(f"  {kind:24} {hit / n:.3f}  ({hit}/{n})")
    print("\nFPR per safe kind:")
    for (label, kind), (hit, n) in sorted(by_kind.items()):
        if label == "safe" and kind not in GRAY:
            note = f"   target <= {TARGETS['fpr_devchat']}" if kind == "dev-chat" else ""
            print(f"  {kind:24} {hit / n:.3f}  ({hit}/{n}){note}")
    print("\ngray slices (reported separately; a gentle note is defensible):")
    for (label, kind), (hit, n) in sorted(by_kind.items()):
        if label == "safe" and kind in GRAY:
            print(f"  {kind:24} {hit / n:.3f}  ({hit}/{n})")
    wrong: list[int] = res["wrong"]  # type: ignore[assignment]
    print(f"\nmisclassified rows: {len(wrong)}")
    if args.verbose:
        for i in wrong:
            print(f"  row {i}: label={rows[i]['label']} kind={rows[i]['kind']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
