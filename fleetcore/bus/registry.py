"""Who is alive: each wolf rewrites its record every heartbeat_s; the bucket's TTL drops it.

Liveness comes from the server's clock (the TTL), not from comparing `heartbeat_at` with
ours, so wolves on machines with skewed clocks are still judged fairly. The claim rule asks
`alive()` to decide whether a claim on an issue is stale.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import Callable

from nats.js.client import JetStreamContext
from nats.js.errors import KeyDeletedError, KeyNotFoundError, NoKeysError
from nats.js.kv import KeyValue

from fleetcore.bus.messages import AgentRecord, BadMessage, utcnow
from fleetcore.bus.subjects import AGENTS_BUCKET, agent_key
from fleetcore.log import fields
from fleetcore.metrics import Metrics

log = logging.getLogger(__name__)


class Registry:
    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext) -> Registry:
        """Bind to the bucket that `ensure_streams` created."""
        return cls(await js.key_value(AGENTS_BUCKET))

    async def beat(self, record: AgentRecord) -> None:
        await self._kv.put(agent_key(record.name), record.to_bytes())

    async def get(self, name: str) -> AgentRecord | None:
        try:
            entry = await self._kv.get(agent_key(name))
        except (KeyNotFoundError, KeyDeletedError):
            return None
        if entry.value is None or not entry.value:
            return None
        try:
            return AgentRecord.from_bytes(entry.value)
        except BadMessage as exc:
            log.warning("registry_bad_record", extra=fields(agent=name, problem=str(exc)))
            return None

    async def alive(self, name: str) -> bool:
        return await self.get(name) is not None

    async def remove(self, name: str) -> None:
        """A clean shutdown: the wolf's claims go stale now rather than after the TTL."""
        await self._kv.delete(agent_key(name))

    async def alive_names(self) -> set[str]:
        """One snapshot for a whole claim decision, so it judges every claim at one moment."""
        return {record.name for record in await self.list()}

    async def list(self) -> builtins.list[AgentRecord]:
        try:
            keys = await self._kv.keys()
        except NoKeysError:
            return []
        records = []
        for key in sorted(keys):
            record = await self.get(key)  # it may have expired since keys() listed it
            if record is not None:
                records.append(record)
        return records


class Heartbeat:
    """Keeps one wolf's record fresh until stopped.

    `record` is called at every beat so the counters and current task are current; the beat
    time is stamped here. A failed beat (the bus is reconnecting) is logged and retried at
    the next tick: a short outage must not kill the wolf, and the TTL covers a long one.
    """

    def __init__(
        self,
        registry: Registry,
        record: Callable[[], AgentRecord],
        interval_s: float,
        metrics: Metrics | None = None,
    ) -> None:
        self._registry = registry
        self._record = record
        self._interval_s = interval_s
        # Each beat written is recorded as `heartbeat.beat` (1): for whoever watches.
        self._metrics = metrics or Metrics()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.name: str | None = None

    async def start(self) -> None:
        """Beat once before returning, so the wolf is listed before it takes any task."""
        if self._task is not None:
            raise RuntimeError("heartbeat already started")
        await self._beat_once()
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name=f"heartbeat-{self.name}")

    async def stop(self, *, deregister: bool = True) -> None:
        """Stop beating; `deregister` also removes the record at once instead of by TTL."""
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if deregister and self.name is not None:
            try:
                await self._registry.remove(self.name)
            except Exception as exc:  # the TTL removes it anyway
                log.warning("deregister_failed", extra=fields(agent=self.name, error=str(exc)))

    async def __aenter__(self) -> Heartbeat:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _beat_once(self) -> None:
        record = self._record().model_copy(update={"heartbeat_at": utcnow()})
        self.name = record.name
        await self._registry.beat(record)
        self._metrics.record("heartbeat.beat", 1)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval_s)
            if self._stop.is_set():
                return
            try:
                await self._beat_once()
            except Exception as exc:
                log.warning(
                    "heartbeat_failed",
                    extra=fields(agent=self.name, error=type(exc).__name__, detail=str(exc)),
                )
