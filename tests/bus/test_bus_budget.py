"""The fleet-wide comment budget on a real nats-server: wolves never overshoot it together."""

from __future__ import annotations

import asyncio

from nats.js import JetStreamContext

from agents.budget import FleetBudget, open_limits


async def test_concurrent_wolves_share_one_hourly_cap(js: JetStreamContext) -> None:
    kv = await open_limits(js)
    now = 1_800_000_000.0 + 12.5  # a fixed hour of its own: no other test touches its key
    wolves = [FleetBudget(kv, per_hour=5, clock=lambda: now) for _ in range(3)]
    results = await asyncio.gather(*(wolves[i % 3].take() for i in range(12)))
    assert results.count(None) == 5
    waits = [r for r in results if r is not None]
    assert len(waits) == 7 and all(0 < w <= 3600 for w in waits)
    assert await wolves[0].peek() is not None

    later = FleetBudget(kv, per_hour=5, clock=lambda: now + 3600)  # the next hour is fresh
    assert await later.peek() is None
    assert await later.take() is None
