"""The output guard (`outguard.judge_reply`) on a file of labelled model replies, on one core.

Prints, per kind: how many replies, and the share judged right (unsafe kinds: caught;
safe kinds: passed), then the totals the issue's targets are stated in, and the latency per
reply (p50/p99, the model already loaded; a stance head reads every reply: the crisis head in
crisis and at-risk contexts, the open head in ordinary ones). Rows are JSON lines with
`text`, `context`, `label` (safe/unsafe) and `kind` (`tools/safety/CORPUS.md`). `context` is
either the word crisis/ordinary or the person's message itself; a message is screened and
given its reply context exactly as the bot does (`outguard.reply_context(screen(message))`,
the function `bot/converse.py` calls), so the detector's misses count against the guard too.
The default file is the blind set: score it once, never tune to it.

    taskset -c 0 .venv/bin/python bench/output_guard.py [FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fleetcore.safety import screen  # noqa: E402
from fleetcore.safety.outguard import ReplyContext, judge_reply, reply_context  # noqa: E402

BLIND = REPO / "tools" / "safety" / "blind" / "replies-blind-v3.jsonl"


def context_of(row: dict[str, str]) -> ReplyContext:
    """crisis/ordinary when given; else what the bot decides from the person's message, by
    the bot's own function (`reply_context`), so crisis, at-risk or ordinary."""
    given = row["context"]
    if given in ("crisis", "ordinary"):
        return ReplyContext(given)
    return reply_context(screen(given))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=BLIND)
    args = parser.parse_args()
    rows = [json.loads(x) for x in args.file.read_text(encoding="utf-8").splitlines() if x]
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    print(
        f"{args.file} : {len(rows)} replies; running on {len(cores) or '?'} core(s); "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )

    t0 = time.perf_counter()
    judge_reply("warm up: load the encoder and the head", True)
    print(f"first call (loads encoder + head): {(time.perf_counter() - t0) * 1000:.0f} ms")

    right: dict[tuple[str, str, str], list[bool]] = defaultdict(list)
    times: dict[str, list[float]] = defaultdict(list)
    missed: dict[str, int] = defaultdict(int)
    for row in rows:
        context = context_of(row)
        t = time.perf_counter()
        judged = judge_reply(row["text"], context)
        times[context].append(time.perf_counter() - t)
        ok = judged.safe == (row["label"] == "safe")
        right[(context, row["label"], row["kind"])].append(ok)
        if not ok:
            missed[row["kind"]] += 1

    print(f"\n{'context':9} {'label':7} {'kind':20} {'n':>4}  {'right':>6}  what right means")
    for (context, label, kind), hits in sorted(right.items()):
        meaning = "caught" if label == "unsafe" else "passed"
        print(
            f"{context:9} {label:7} {kind:20} {len(hits):4d}  {sum(hits) / len(hits):6.3f}  "
            f"{meaning}"
        )

    def share(label: str, context: str | None = None) -> str:
        hits = [
            h
            for (c, lab, _), hs in right.items()
            if lab == label and (context is None or c == context)
            for h in hs
        ]
        return f"{sum(hits) / len(hits):.3f} (n={len(hits)})" if hits else "n/a"

    print()
    print(f"unsafe replies caught:               {share('unsafe')}")
    print(f"safe replies passed (all):           {share('safe')}")
    print(f"safe replies passed (crisis context): {share('safe', 'crisis')}")
    print(f"safe replies passed (at-risk):        {share('safe', 'at-risk')}")
    print(
        f"unsafe caught (at-risk / ordinary):  {share('unsafe', 'at-risk')} / "
        f"{share('unsafe', 'ordinary')}"
    )
    print(f"ordinary replies passed:             {share('safe', 'ordinary')}")
    worst = min(right.items(), key=lambda kv: sum(kv[1]) / len(kv[1]))
    print(f"worst kind: {worst[0][2]} {sum(worst[1]) / len(worst[1]):.3f}")
    print()
    everything = [t for ts in times.values() for t in ts]
    for name, ts in [("all replies", everything), *sorted(times.items())]:
        print(
            f"latency per reply, {name:9}: p50 {statistics.median(ts) * 1000:5.1f} ms  "
            f"p99 {pct(ts, 99) * 1000:5.1f} ms  max {max(ts) * 1000:5.1f} ms  (n={len(ts)})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
