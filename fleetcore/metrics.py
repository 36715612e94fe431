"""A small metrics observer: product code records, benchmarks and tests subscribe.

Product classes keep no benchmark counters of their own; whoever wants a figure (the round
trip bench, the event-loop lag bench) subscribes for the names it cares about.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

Observer = Callable[[str, float], None]

# How often the loop-lag watcher wakes: a stall longer than this is always seen.
LOOP_LAG_INTERVAL_S = 0.1


class Metrics:
    def __init__(self) -> None:
        self._observers: list[Observer] = []

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """Add an observer; call the returned function to remove it."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer)

    def record(self, name: str, value: float) -> None:
        for observer in self._observers:
            observer(name, value)


async def watch_loop_lag(
    metrics: Metrics, name: str, interval_s: float = LOOP_LAG_INTERVAL_S
) -> None:
    """Record, every `interval_s`, how late the event loop woke a sleeper (seconds).

    A callback that holds the loop (CPU work, a blocking call) delays every other task;
    this is how long. Runs until cancelled.
    """
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval_s
        await asyncio.sleep(interval_s)
        metrics.record(name, max(0.0, loop.time() - due))
