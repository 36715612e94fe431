"""The local fleet's NATS users (fleet/local/busauth.py): auth on by default, agents added
and removed on a running nats-server by a reload, found through its pidfile as another
process (`fleet agent add/remove`) would find it."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client

from fleet.local.busauth import (
    LOCAL_WOLF,
    add_agent,
    agent_seed_path,
    bot_seed_path,
    local_users,
    remove_agent,
)
from fleet.local.cluster import NatsCluster, local_cluster
from fleet.local.nats import NatsServer, ensure_nkey_seed
from fleetcore.bus.auth import AgentUser, agent_inbox_prefix, server_config
from fleetcore.bus.config import BusConfig
from fleetcore.bus.connect import BusAuthError, connect
from fleettest.wait import wait_until


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[tuple[Path, NatsServer]]:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    server = NatsServer(state / "nats", config=server_config(local_users(state)))
    await server.start()
    try:
        yield state, server
    finally:
        await server.stop()


@pytest.fixture
async def local_cluster_of_3(tmp_path: Path) -> AsyncIterator[tuple[Path, NatsCluster]]:
    """`fleet up --nats-cluster 3`'s nats-servers: each node with its own config file."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    cluster = local_cluster(state, 3, server_config(local_users(state)), {})
    await cluster.start()
    try:
        yield state, cluster
    finally:
        await cluster.stop()


def _cfg(server: NatsServer, seed: Path | None) -> BusConfig:
    return BusConfig(
        servers=[server.url], nkey_seed_file=seed, reconnect_wait_s=0.05, reconnect_max_wait_s=0.2
    )


async def _agent(
    server: NatsServer, name: str, seed: Path, errors: list[Exception], changed: asyncio.Event
) -> Client:
    async def on_error(exc: Exception) -> None:
        errors.append(exc)
        changed.set()

    return await connect(
        _cfg(server, seed),
        f"wolf-{name}",
        inbox_prefix=agent_inbox_prefix(name),
        on_error=on_error,
        first_connect_timeout_s=10,
    )


def test_the_first_run_makes_private_keys_once(tmp_path: Path) -> None:
    state = tmp_path / "s"
    state.mkdir(mode=0o700)
    users = local_users(state)
    assert [(a.name, a.tier) for a in users.agents] == [(LOCAL_WOLF, "wolves")]
    for path in (
        bot_seed_path(state),
        agent_seed_path(state, LOCAL_WOLF),
        state / "nats-users.json",
    ):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(bot_seed_path(state).parent.stat().st_mode) == 0o700
    assert local_users(state) == users  # read back, no new keys


async def test_nobody_gets_on_without_a_key(local: tuple[Path, NatsServer]) -> None:
    _, server = local
    with pytest.raises(BusAuthError, match="no nkey_seed_file"):
        await connect(_cfg(server, None), "anonymous")


async def test_the_bot_and_the_local_wolf_connect(local: tuple[Path, NatsServer]) -> None:
    state, server = local
    bot = await connect(_cfg(server, bot_seed_path(state)), "bot", first_connect_timeout_s=10)
    errors: list[Exception] = []
    seed = agent_seed_path(state, LOCAL_WOLF)
    wolf = await _agent(server, LOCAL_WOLF, seed, errors, asyncio.Event())
    try:
        await bot.flush(timeout=5)
        await wolf.flush(timeout=5)
        assert errors == []
    finally:
        await wolf.close()
        await bot.close()


async def test_an_agent_added_live_can_connect_and_removed_live_is_cut_off(
    local: tuple[Path, NatsServer], tmp_path: Path
) -> None:
    state, server = local
    seed = tmp_path / "elsewhere" / "nkey.seed"  # made by `fleet agent keygen` elsewhere
    agent = AgentUser("wolf-2", ensure_nkey_seed(seed), "wolves")
    with pytest.raises(BusAuthError):
        await connect(_cfg(server, seed), "wolf-wolf-2")

    bot = await connect(_cfg(server, bot_seed_path(state)), "bot", first_connect_timeout_s=10)
    try:
        assert await add_agent(state, agent)  # True: the running server reloaded
        # JetStream survives the reload (it is in the config file, not only in flags).
        assert (await bot.jetstream().account_info()).streams == 0
    finally:
        await bot.close()
    errors: list[Exception] = []
    changed = asyncio.Event()
    nc = await _agent(server, "wolf-2", seed, errors, changed)
    try:
        await nc.flush(timeout=5)
        assert await remove_agent(state, "wolf-2")
        await wait_until(
            lambda: any("authorization violation" in str(e).lower() for e in errors),
            changed=changed,
            timeout=10,
            what="wolf-2's connection refused",
        )
        assert not nc.is_connected
    finally:
        await nc.close()
    with pytest.raises(BusAuthError, match="rejected wolf-wolf-2"):
        await connect(_cfg(server, seed), "wolf-wolf-2")
    assert [a.name for a in local_users(state).agents] == [LOCAL_WOLF]


async def test_in_a_cluster_every_node_lets_an_added_agent_on_and_a_removed_one_off(
    local_cluster_of_3: tuple[Path, NatsCluster], tmp_path: Path
) -> None:
    state, cluster = local_cluster_of_3
    seed = tmp_path / "elsewhere" / "nkey.seed"
    agent = AgentUser("wolf-2", ensure_nkey_seed(seed), "wolves")
    for node in cluster.nodes:
        with pytest.raises(BusAuthError):
            await connect(_cfg(node, seed), "wolf-wolf-2")

    assert await add_agent(state, agent) == 3  # every node reloaded, not one
    errors: list[Exception] = []
    changed = asyncio.Event()
    live = [await _agent(node, "wolf-2", seed, errors, changed) for node in cluster.nodes]
    try:
        for nc in live:
            await nc.flush(timeout=5)
        assert await remove_agent(state, "wolf-2") == 3
        # Each node drops its own connection of the agent's...
        await wait_until(
            lambda: not any(nc.is_connected for nc in live),
            changed=changed,
            timeout=15,
            what="wolf-2 cut off from every node",
        )
    finally:
        for nc in live:
            await nc.close()
    # ... and refuses it a new one; the cluster still routes for the others.
    for node in cluster.nodes:
        with pytest.raises(BusAuthError, match="rejected wolf-wolf-2"):
            await connect(_cfg(node, seed), "wolf-wolf-2")
    bot = await connect(
        _cfg(cluster.nodes[2], bot_seed_path(state)), "bot", first_connect_timeout_s=10
    )
    try:
        assert (await bot.jetstream().account_info()).streams == 0
    finally:
        await bot.close()
