"""The bot's event-loop lag, as `BotApp.run` records it for whoever subscribes."""

from __future__ import annotations

import asyncio
import contextlib
import time

from fleetcore.metrics import Metrics, watch_loop_lag


def hold_the_loop(seconds: float) -> None:
    """What CPU-bound work in a handler does to every other task: the loop gets no turn
    until it returns. Spinning on the clock, because this holds the loop on purpose; it is
    not a wait for anything."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        pass


async def test_a_stalled_loop_is_recorded_as_lag_under_the_name_given() -> None:
    metrics = Metrics()
    seen: list[tuple[str, float]] = []
    recorded = asyncio.Event()

    def observe(name: str, value: float) -> None:
        seen.append((name, value))
        recorded.set()

    metrics.subscribe(observe)
    watcher = asyncio.create_task(watch_loop_lag(metrics, "test.lag_s", interval_s=0.01))
    try:
        await asyncio.wait_for(recorded.wait(), 30)  # the watcher is sleeping again now
        recorded.clear()
        hold_the_loop(0.2)  # its next wake-up is at least this late, less a tick
        await asyncio.wait_for(recorded.wait(), 30)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    assert {name for name, _ in seen} == {"test.lag_s"}
    assert all(value >= 0 for _, value in seen)
    assert max(value for _, value in seen) >= 0.2 - 0.01
