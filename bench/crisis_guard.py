"""The whole crisis guard (rules + learned stage), as the bot runs it, on one core.

Prints:
- latency per message (p50/p99) by length bucket, over the blind set and generated chat;
- time for one message of 1, 2, 4, 10 and 60 KB (linear beyond 2 KB: views are bounded);
- event-loop lag while 100 messages are screened the way the bot does (a thread pool of
  two), measured by a 5 ms ticker on the loop;
- resident memory of the process with the encoder loaded.

    taskset -c 0 .venv/bin/python bench/crisis_guard.py [--data FILE.jsonl]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from crisis_speed import chat_lines  # noqa: E402

from fleetcore.safety import screen  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def timed(text: str) -> float:
    t0 = time.perf_counter()
    screen(text)
    return time.perf_counter() - t0


async def loop_lag(texts: list[str]) -> tuple[float, float, float]:
    """(p50, p99, max) lag of a 5 ms ticker while `texts` are screened on two threads."""
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=2)
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            t0 = loop.time()
            await asyncio.sleep(0.005)
            lags.append(loop.time() - t0 - 0.005)

    tick = asyncio.create_task(ticker())
    await asyncio.gather(*(loop.run_in_executor(pool, screen, t) for t in texts))
    done.set()
    await tick
    pool.shutdown()
    return statistics.median(lags), pct(lags, 99), max(lags)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--data", type=Path, default=REPO / "tools" / "safety" / "blind" / "crisis-blind-v1.jsonl"
    )
    args = parser.parse_args()
    rows = [json.loads(x) for x in args.data.read_text(encoding="utf-8").splitlines() if x]
    texts = [r["text"] for r in rows] + chat_lines(500)
    t0 = time.perf_counter()
    screen("warm up: load the encoder and the head")
    print(f"first call (loads encoder + head): {(time.perf_counter() - t0) * 1000:.0f} ms")
    buckets: dict[str, list[float]] = {"<=300": [], "301-2048": [], ">2048": []}
    for text in texts:
        n = len(text.encode("utf-8"))
        key = "<=300" if n <= 300 else "301-2048" if n <= 2048 else ">2048"
        buckets[key].append(timed(text))
    everything = [t for b in buckets.values() for t in b]
    for key, values in [*buckets.items(), ("all <=2 KB", buckets["<=300"] + buckets["301-2048"])]:
        if values:
            print(
                f"{key:>10}: n={len(values):5d}  p50 {statistics.median(values) * 1000:6.2f} ms"
                f"  p99 {pct(values, 99) * 1000:6.2f} ms  max {max(values) * 1000:6.2f} ms"
            )
    print(f"       all: n={len(everything)}")
    filler = "the deploy is stuck on the migration again, restarting the worker. "
    for kb in (1, 2, 4, 10, 60):
        body = (filler * (kb * 1024 // len(filler) + 1))[: kb * 1024 - 40]
        body += " i want to end my life"
        runs = [timed(body) for _ in range(5)]
        print(f"{kb:>3} KB message: median {statistics.median(runs) * 1000:7.1f} ms")
    p50, p99, worst = asyncio.run(loop_lag(texts[:100]))
    print(
        f"event-loop lag while 100 messages are screened: p50 {p50 * 1000:.2f} ms"
        f"  p99 {p99 * 1000:.2f} ms  max {worst * 1000:.2f} ms"
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS with the encoder loaded: {rss:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
