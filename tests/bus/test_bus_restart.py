"""A nats-server restart: results on disk survive and clients reconnect by themselves.

Uses its own server in the test's tmp dir so the session server is never disturbed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from nats.aio.client import Client

from fleet.local.nats import NatsServer
from fleetcore.bus.config import BusConfig
from fleetcore.bus.connect import connect
from fleetcore.bus.messages import Outcome, Reason, Result, Task, publish_result, publish_task
from fleetcore.bus.streams import ensure_streams, pull_results, queue_depth
from fleetcore.proc import ServerStartError


def result(issue: int, burn: str = "b1") -> Result:
    task = Task.new(burn, "hermes", "fleet/hermes", issue, "fast")
    return Result.for_task(task, Outcome.DONE, Reason.TRIAGED, "wolf-1", f"triaged #{issue}")


async def test_results_survive_a_restart_and_clients_reconnect(
    own_nats: NatsServer, make_config: Callable[..., BusConfig]
) -> None:
    cfg = make_config(own_nats.url)
    disconnected, reconnected = asyncio.Event(), asyncio.Event()

    async def on_disconnected() -> None:
        disconnected.set()

    async def on_reconnected() -> None:
        reconnected.set()

    wolf: Client = await connect(
        cfg, "wolf-1", on_disconnected=on_disconnected, on_reconnected=on_reconnected
    )
    bot: Client | None = None
    try:
        js = wolf.jetstream()
        await ensure_streams(js, cfg, tiers=["fast"])
        await publish_result(js, result(1))
        await publish_task(js, Task.new("b1", "hermes", "fleet/hermes", 9, "fast"))

        await own_nats.stop()
        await asyncio.wait_for(disconnected.wait(), 10)
        # Published while the server is down: buffered, then sent on reconnection.
        during = asyncio.create_task(publish_result(wolf.jetstream(timeout=20), result(2)))
        await own_nats.start()
        await asyncio.wait_for(reconnected.wait(), 20)
        assert wolf.is_connected

        await asyncio.wait_for(during, 25)
        await publish_result(js, result(3))
        assert (await publish_result(js, result(1))).duplicate  # dedup state survived too

        bot = await connect(cfg, "bot")
        sub = await pull_results(bot.jetstream())
        msgs = await sub.fetch(3, timeout=5)
        got = sorted(Result.from_bytes(m.data).issue_number for m in msgs)
        assert got == [1, 2, 3]
        for m in msgs:
            await m.ack_sync()
        assert await queue_depth(js, "fast") == 1  # the queued task survived as well
    finally:
        await wolf.close()
        if bot is not None:
            await bot.close()


async def test_a_client_waits_for_a_server_that_is_not_up_yet(
    own_nats: NatsServer, make_config: Callable[..., BusConfig]
) -> None:
    """Wolves may start before the bus: the first connection keeps trying until it is up."""
    await own_nats.stop()
    connecting = asyncio.create_task(connect(make_config(own_nats.url), "early-wolf"))
    # The server is down, so the attempt is still going after a bounded wait on it.
    done, _ = await asyncio.wait({connecting}, timeout=0.5)
    assert not done
    await own_nats.start()
    nc = await asyncio.wait_for(connecting, 20)
    try:
        assert nc.is_connected
    finally:
        await nc.close()


async def test_nats_server_picks_its_own_port_and_keeps_it_across_a_restart(
    tmp_path: Path,
) -> None:
    """No free-port probe: nats-server binds any free port (-p -1) and says which."""
    server = NatsServer(tmp_path / "nats")
    with pytest.raises(ServerStartError, match="picks one when it starts"):
        _ = server.url
    await server.start()
    try:
        port = server.port
        assert port is not None and server.url == f"nats://127.0.0.1:{port}"
        (ports_file,) = server.ports_dir.glob("*.ports")
        assert json.loads(ports_file.read_text())["nats"] == [server.url]
        await server.restart()  # clients hold the URL: the port must stay the same
        assert server.port == port
    finally:
        await server.stop()
