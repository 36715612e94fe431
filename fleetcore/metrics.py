"""A small metrics observer: product code records, benchmarks and tests subscribe.

Product classes keep no benchmark counters of their own; whoever wants a figure (the round
trip bench, the event-loop lag bench) subscribes for the names it cares about.
"""

from __future__ import annotations

from collections.abc import Callable

Observer = Callable[[str, float], None]


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
