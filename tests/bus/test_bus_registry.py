"""The registry on its own nats-server, with a short TTL so expiry is quick to see."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import nats.errors
import pytest
from nats.js.client import JetStreamContext

from fleet.local.nats import NatsServer
from fleetcore.bus.config import BusConfig
from fleetcore.bus.connect import connect
from fleetcore.bus.messages import AgentRecord
from fleetcore.bus.registry import Heartbeat, Registry
from fleetcore.bus.streams import ensure_streams
from fleetcore.bus.subjects import agent_key
from fleetcore.metrics import Metrics

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def quick(own_nats: NatsServer, make_config: Callable[..., BusConfig]) -> BusConfig:
    return make_config(own_nats.url, heartbeat_s=0.2, heartbeat_ttl_s=1.5)


@pytest.fixture
async def registry(quick: BusConfig) -> AsyncIterator[Registry]:
    nc = await connect(quick, "registry-test", first_connect_timeout_s=10)
    try:
        js: JetStreamContext = nc.jetstream()
        await ensure_streams(js, quick)
        yield await Registry.open(js)
    finally:
        await nc.close()


def record(name: str, task: str | None = None, done: int = 0) -> AgentRecord:
    return AgentRecord(
        name=name,
        tier="fast",
        model="llama-3",
        current_task=task,
        done=done,
        started_at=T0,
        heartbeat_at=T0,
    )


def counted_beats() -> tuple[Metrics, Callable[[int], Awaitable[None]]]:
    """A heartbeat's metrics, and a wait for the `count`-th beat written."""
    metrics = Metrics()
    written = {"n": 0}
    beaten = asyncio.Event()

    def on_record(name: str, value: float) -> None:
        if name == "heartbeat.beat":
            written["n"] += 1
            beaten.set()

    async def beats(count: int) -> None:
        while written["n"] < count:  # no await between this check and the wait
            beaten.clear()
            await beaten.wait()

    metrics.subscribe(on_record)
    return metrics, beats


async def test_a_beating_agent_is_listed_and_dropped_after_the_ttl(
    registry: Registry, quick: BusConfig
) -> None:
    counters = {"done": 0}

    def current() -> AgentRecord:
        counters["done"] += 1
        return record("wolf-1", "b1-4", counters["done"])

    metrics, beats = counted_beats()
    beat = Heartbeat(registry, current, quick.heartbeat_s, metrics)
    await beat.start()
    try:
        assert await registry.alive("wolf-1")  # listed before start() returns
        t0 = time.monotonic()
        # Keep beating for well past the TTL: still alive, and its record is fresh.
        await asyncio.wait_for(beats(10), 10)
        assert time.monotonic() - t0 > quick.heartbeat_ttl_s
        (listed,) = await registry.list()
        assert listed.name == "wolf-1" and listed.current_task == "b1-4"
        assert listed.done >= 10 and listed.heartbeat_at > T0
    finally:
        await beat.stop(deregister=False)  # as if the wolf died: no goodbye

    # Expiry happens on the server's clock and announces nothing, so wait on the event
    # that would disprove it, a beat, for one TTL (plus a second): none may come, and then
    # the record must be gone.
    watcher = await registry._kv.watch(agent_key("wolf-1"))
    try:
        while await watcher.updates(timeout=5) is not None:  # the current value, then None
            pass
        stopped = time.monotonic()
        with pytest.raises(nats.errors.TimeoutError):
            await watcher.updates(timeout=quick.heartbeat_ttl_s + 1.0)
        assert time.monotonic() - stopped > quick.heartbeat_ttl_s
    finally:
        await watcher.stop()
    assert not await registry.alive("wolf-1")
    assert await registry.list() == []
    assert await registry.alive_names() == set()


async def test_a_clean_stop_deregisters_at_once(registry: Registry, quick: BusConfig) -> None:
    async with Heartbeat(registry, lambda: record("wolf-2"), quick.heartbeat_s) as beat:
        assert await registry.alive("wolf-2")
        assert beat.name == "wolf-2"
    assert not await registry.alive("wolf-2")


async def test_list_shows_every_live_agent(registry: Registry) -> None:
    for name in ("wolf-b", "wolf-a", "wolf-c"):
        await registry.beat(record(name))
    await registry.remove("wolf-c")
    assert [r.name for r in await registry.list()] == ["wolf-a", "wolf-b"]
    assert await registry.alive_names() == {"wolf-a", "wolf-b"}
    assert await registry.get("nobody") is None
    assert not await registry.alive("nobody")


async def test_a_heartbeat_survives_a_failing_beat(registry: Registry, quick: BusConfig) -> None:
    """One failed write (say, mid-reconnect) must not stop the heartbeat for good."""
    calls = {"n": 0}

    def flaky() -> AgentRecord:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ConnectionError("bus down")
        return record("wolf-3")

    metrics, beats = counted_beats()
    beat = Heartbeat(registry, flaky, quick.heartbeat_s, metrics)
    await beat.start()
    try:
        await asyncio.wait_for(beats(3), 10)
        assert calls["n"] >= 4
    finally:
        await beat.stop()
