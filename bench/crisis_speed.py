"""Crisis detector speed: per-message latency and growth with length, on one core.

Prints p50/p99 per message over the dev set and over 10,000 generated ordinary chat lines,
then the time for one 1 KB, 10 KB, 100 KB and 1 MB message (ordinary text with a crisis
sentence at the end, so the whole text must be read).

    .venv/bin/python bench/crisis_speed.py [--data PATH] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fleetcore.safety import screen  # noqa: E402

_SUBJECTS = [
    "the build",
    "CI",
    "the staging box",
    "my branch",
    "the worker",
    "postgres",
    "the deploy",
    "this PR",
    "the cron job",
    "the API",
    "redis",
    "the test suite",
    "the frontend",
    "our bot",
    "the migration",
    "gunicorn",
    "the cache",
    "k8s",
]
_VERBS = [
    "is failing again",
    "died overnight",
    "hangs on startup",
    "is dead slow",
    "got OOMKilled",
    "needs a restart",
    "is green now",
    "timed out",
    "is flaky",
    "keeps crashing",
    "was killed by the watchdog",
    "looks fine",
    "is blocked on review",
]
_ASKS = [
    "can someone kill -9 it?",
    "should I kill the process?",
    "any ideas?",
    "lol",
    "shoot me a message when done",
    "I'll take a look after lunch",
    "ugh, this is killing me",
    "let's nuke it and redeploy",
    "execute the script again?",
    "hang on, checking logs",
    "merging once it's green",
    "who broke main?",
    "ping me if it dies again",
    "",
]


def chat_lines(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)}, {rng.choice(_ASKS)}".rstrip(", ")
        for _ in range(n)
    ]


def latencies(texts: list[str], repeat: int) -> list[float]:
    for t in texts[:50]:
        screen(t)  # warm up
    out: list[float] = []
    for _ in range(repeat):
        for t in texts:
            t0 = time.perf_counter_ns()
            screen(t)
            out.append((time.perf_counter_ns() - t0) / 1000)
    return sorted(out)


def pct(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(p * len(sorted_values)))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "crisis" / "dev.jsonl")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    dev = [
        json.loads(x)["text"]
        for x in args.data.read_text(encoding="utf-8").splitlines()
        if x.strip()
    ]
    chat = chat_lines(10_000)
    short = [t for t in dev if len(t) <= 300]
    for name, texts in (
        ("dev set", dev),
        ("dev set, messages <= 300 chars", short),
        ("10,000 ordinary chat lines", chat),
    ):
        lat = latencies(texts, args.repeat)
        print(
            f"{name:32} n={len(texts):6}  p50 {pct(lat, 0.5):8.1f} us  "
            f"p99 {pct(lat, 0.99):8.1f} us  max {lat[-1]:8.1f} us  "
            f"mean {statistics.fmean(lat):7.1f} us"
        )
    filler = " ".join(chat_lines(20_000, seed=11)) + " "
    tail = " Anyway. I want to end my life."
    print("\nlong messages (one call each):")
    for size in (1_000, 10_000, 100_000, 1_000_000):
        body = (filler * (size // len(filler) + 1))[: size - len(tail)] + tail
        t0 = time.perf_counter()
        v = screen(body)
        dt = time.perf_counter() - t0
        print(
            f"  {size:>9,} chars  {dt * 1000:9.1f} ms  ({dt / size * 1e9:6.0f} ns/char)  "
            f"level={v.level.value}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
