"""The fleet's one retry policy: a delay that doubles per failure, up to a cap.

Used by the NATS reconnect schedule, the webhook notice dispatcher and (for a bounded
number of tries) `attempts()`. Jitter spreads clients out, so a server that comes back is
not hit by every wolf in the same instant.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    first_s: float
    max_s: float
    factor: float = 2.0
    # 0.5: each delay is drawn from [half, all] of the doubled value; 0: exact.
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if not (0 < self.first_s <= self.max_s) or self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError(f"not a usable backoff: {self}")

    def delay(self, failures: int) -> float:
        """How long to wait after `failures` + 1 failures in a row (0: after the first)."""
        full = min(self.max_s, self.first_s * self.factor ** min(max(failures, 0), 64))
        if self.jitter:
            full *= random.uniform(1 - self.jitter, 1.0)
        return full

    async def attempts(self, count: int) -> AsyncIterator[int]:
        """Attempt numbers 0 .. count-1, sleeping `delay(n - 1)` before attempt n.

        `async for attempt in backoff.attempts(4): ... try; break on success`: the loop
        body decides what is worth another try; this only paces the tries.
        """
        for attempt in range(count):
            if attempt:
                await asyncio.sleep(self.delay(attempt - 1))
            yield attempt
