"""The fleet's comment budget: one hourly count in JetStream KV, shared by every wolf.

A per-wolf limit multiplies with the number of wolves; the cap an operator sets is for
the fleet. Each wolf increments the current hour's counter with compare-and-set (the KV
revision), so two wolves can never both take the last slot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from nats.js import JetStreamContext
from nats.js.errors import BadRequestError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from agents.triage import CommentBudget
from fleetcore.bus.subjects import LIMITS_BUCKET

log = logging.getLogger("hermes.budget")

HOUR_S = 3600


async def open_limits(js: JetStreamContext) -> KeyValue:
    """Bind to the counter bucket, which the bot creates (`ensure_streams`): a wolf has no
    right to create buckets."""
    return await js.key_value(LIMITS_BUCKET)


class FleetBudget(CommentBudget):
    """At most `per_hour` comments per clock hour (UTC) across the whole fleet."""

    def __init__(self, kv: KeyValue, per_hour: int, clock: Callable[[], float] = time.time) -> None:
        self.kv = kv
        self.per_hour = per_hour
        self.clock = clock

    def _key(self, now: float) -> str:
        return "comments-" + datetime.fromtimestamp(now, UTC).strftime("%Y%m%d%H")

    def _wait(self, now: float) -> float:
        return max(1.0, HOUR_S - now % HOUR_S)

    async def _read(self, key: str) -> tuple[int, int | None]:
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return 0, None
        return int((entry.value or b"0").decode() or 0), entry.revision

    async def peek(self) -> float | None:
        now = self.clock()
        count, _ = await self._read(self._key(now))
        return self._wait(now) if count >= self.per_hour else None

    async def take(self) -> float | None:
        now = self.clock()
        key = self._key(now)
        while True:
            count, revision = await self._read(key)
            if count >= self.per_hour:
                log.info("comment_budget_spent", extra={"per_hour": self.per_hour})
                return self._wait(now)
            value = str(count + 1).encode()
            try:
                if revision is None:
                    await self.kv.create(key, value)
                else:
                    await self.kv.update(key, value, last=revision)
            except (KeyWrongLastSequenceError, BadRequestError):
                continue  # another wolf took a slot first: read again
            return None
