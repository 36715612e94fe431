"""Cooldowns: a provider that failed is left alone for a while, without a request.

A new failure can only extend a running cooldown, never shorten it: a 429 with
`Retry-After: 1` must not cancel the hour a rejected key earned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Cooling:
    until: float
    kind: str
    reason: str
    words: str = ""  # for a person: "out of credit", "rate limited"


class Cooldowns:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._by_name: dict[str, Cooling] = {}

    def extend(self, name: str, seconds: float, kind: str, reason: str, words: str = "") -> None:
        if seconds <= 0:
            return
        until = self._clock() + seconds
        current = self._by_name.get(name)
        if current is not None and current.until >= until:
            return
        self._by_name[name] = Cooling(until, kind, reason, words)

    def get(self, name: str) -> Cooling | None:
        current = self._by_name.get(name)
        if current is None or current.until <= self._clock():
            return None
        return current

    def is_cooling(self, name: str) -> bool:
        return self.get(name) is not None

    def remaining(self, name: str) -> float:
        current = self.get(name)
        return 0.0 if current is None else current.until - self._clock()

    def earliest_ready(self, names: Iterable[str]) -> float | None:
        """Seconds until the first of `names` is usable again (0 if one already is)."""
        waits = [self.remaining(n) for n in names]
        return min(waits) if waits else None

    def clear(self, name: str) -> None:
        self._by_name.pop(name, None)
