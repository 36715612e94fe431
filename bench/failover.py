"""What failover costs: the extra time to an answer when the primary is broken.

Prints, for a primary that (a) refuses connections, (b) answers 401, (c) answers 429 and
(d) hangs, the extra time over a healthy primary; and how many of 1000 consecutive
requests reach a dead primary (cooldowns should keep it to one or two), and how many
requests, one every 10 s of (simulated) time for almost 3 hours, reach a primary that is out
of credit (the billing cooldown should keep it to one; a 30 s cooldown would let ~330 in).

    .venv/bin/python bench/failover.py
"""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # fleettest

import fleettest.models_fake as fakes
from fleetcore.metrics import Metrics
from fleetcore.models.chain import FallbackChain
from fleetcore.models.config import ChainConfig, ProviderConfig

ASK = [{"role": "user", "content": "hi"}]
FIRST_BYTE_S = 1.0
CFG = ChainConfig(first_byte_timeout_s=FIRST_BYTE_S, total_timeout_s=5, short_cooldown_s=30)
SOUL = (Path(__file__).resolve().parents[1] / "SOUL.md").read_text()


def primary_requests(metrics: Metrics) -> list[int]:
    """A counter of the requests that reach the primary, fed by the chain's metrics."""
    reached = [0]

    def count(name: str, value: float) -> None:
        if name == "chain.requests:primary":
            reached[0] += int(value)

    metrics.subscribe(count)
    return reached


def prov(name: str, url: str) -> ProviderConfig:
    return ProviderConfig(provider=name, model=name, base_url=url, api_key_env="BENCH_KEY")


async def first_answer_ms(primary_url: str, backup: fakes.FakeProvider) -> float:
    """A fresh chain each time: the first request pays the failover, as at 2 AM."""
    chain = FallbackChain(
        [prov("primary", primary_url), prov("backup", backup.base_url)],
        CFG,
        SOUL,
        primary="primary",
    )
    t0 = time.perf_counter()
    await chain.complete(ASK)
    ms = (time.perf_counter() - t0) * 1000
    await chain.aclose()
    return ms


async def main() -> None:
    logging.getLogger("fleetcore.models").setLevel(logging.CRITICAL)  # failures are the point here
    os.environ.setdefault("BENCH_KEY", "bench")
    async with (
        fakes.FakeProvider() as healthy,
        fakes.FakeProvider() as backup,
        fakes.FakeProvider() as broken,
    ):
        runs = 20
        base = statistics.median(
            [await first_answer_ms(healthy.base_url, backup) for _ in range(runs)]
        )
        print(f"healthy primary: median {base:.1f} ms to an answer ({runs} runs)")
        cases = [
            ("a) refusing connections", None),
            ("b) answering 401", fakes.status(401)),
            ("c) answering 429", fakes.rate_limited("30")),
        ]
        for label, behaviour in cases:
            url = fakes.refused_url() if behaviour is None else broken.base_url
            if behaviour is not None:
                broken.behave(behaviour)
            times = [await first_answer_ms(url, backup) for _ in range(runs)]
            extra = statistics.median(times) - base
            print(f"{label:<26} extra {extra:6.1f} ms (median of {runs}; target < 50 ms)")
        broken.behave(fakes.hang())
        t = await first_answer_ms(broken.base_url, backup)
        print(
            f"{'d) hanging':<26} extra {t - base:6.1f} ms (first-byte timeout "
            f"{FIRST_BYTE_S * 1000:.0f} ms; target <= it)"
        )

        dead = fakes.refused_url()
        chain = FallbackChain(
            [prov("primary", dead), prov("backup", backup.base_url)], CFG, SOUL, primary="primary"
        )
        counted = primary_requests(chain.metrics)
        for _ in range(1000):
            await chain.complete(ASK)
        reached = counted[0]
        await chain.aclose()
        print(f"1000 consecutive requests: {reached} reached the dead primary (target <= 3)")

        broken.behave(fakes.openai_insufficient_quota())
        now = [0.0]
        chain = FallbackChain(
            [prov("primary", broken.base_url), prov("backup", backup.base_url)],
            CFG,
            SOUL,
            primary="primary",
            clock=lambda: now[0],
        )
        counted = primary_requests(chain.metrics)
        for _ in range(1000):
            await chain.complete(ASK)
            now[0] += 10
        reached = counted[0]
        await chain.aclose()
        print(
            f"1000 requests over {now[0] / 3600:.1f} h: {reached} reached the out-of-credit "
            f"primary (billing cooldown {CFG.billing_cooldown_s / 3600:.0f} h; target 1)"
        )


if __name__ == "__main__":
    asyncio.run(main())
