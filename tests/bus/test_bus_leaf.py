"""A remote wolf through a leaf node on loopback: the leaf dials the hub with mutual TLS,
the wolf reaches the hub's JetStream through the `hub` domain with its own NKey, and the
link carries no more than that wolf's rights."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import nats.errors
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError

from fleet.local.nats import NatsServer, ensure_nkey_seed
from fleetcore.bus.auth import AgentUser, BusUsers, TLSFiles, agent_inbox_prefix
from fleetcore.bus.config import BusConfig
from fleetcore.bus.connect import BusAuthError, connect
from fleetcore.bus.leaf import (
    HUB_DOMAIN,
    LEAF_DOMAIN,
    LeafLink,
    LeafTLS,
    hub_config,
    leaf_config,
    link_permissions,
)
from fleetcore.bus.messages import Outcome, Reason, Result, Task, publish_result, publish_task
from fleetcore.bus.pki import FleetCA
from fleetcore.bus.status import WolfStatus, publish_status
from fleetcore.bus.streams import (
    ensure_streams,
    fleet_jetstream,
    pull_results,
    pull_tasks,
    tier_consumer_ready,
)
from fleetcore.bus.subjects import (
    AGENTS_BUCKET,
    RESULTS_STREAM,
    STATUS_SUBJECTS,
    TASKS_STREAM,
    tier_filter,
)
from fleetcore.proc import free_port
from fleettest.wait import wait_until

WOLF = "wolf-remote"
TIER = "remote"


@dataclass
class Hub:
    server: NatsServer
    leaf: NatsServer
    keys: Path

    def bot(self) -> BusConfig:
        return BusConfig(servers=[self.server.url], nkey_seed_file=self.keys / "bot.nk")

    def wolf(self, seed: str = WOLF) -> BusConfig:
        """The remote wolf's config: its local leaf, its key, the hub's domain."""
        return BusConfig(
            servers=[self.leaf.url],
            nkey_seed_file=self.keys / f"{seed}.nk",
            jetstream_domain=HUB_DOMAIN,
            reconnect_wait_s=0.05,
            reconnect_max_wait_s=0.2,
        )


@pytest.fixture
async def hub(tmp_path: Path, configured_nats) -> AsyncIterator[Hub]:  # type: ignore[no-untyped-def]
    pki, keys = tmp_path / "pki", tmp_path / "keys"
    ca = FleetCA.load_or_create(pki)
    served = ca.issue_server(["127.0.0.1", "localhost"], pki / "hub.pem", pki / "hub-key.pem")
    # The leaf's certificate, made by the fleet's CA for the wolf's machine.
    leaf_cert = ca.issue_client(WOLF, pki / "leaf.pem", pki / "leaf-key.pem")
    wolf = AgentUser(WOLF, ensure_nkey_seed(keys / f"{WOLF}.nk"), TIER)
    users = BusUsers(ensure_nkey_seed(keys / "bot.nk"), (wolf,))
    ensure_nkey_seed(keys / "stranger.nk")  # a key nobody let on
    # nats-server 2.9 does not report its leafnode port; a known one, as in production.
    leaf_port = free_port()
    hub_text = hub_config(
        users,
        (LeafLink(wolf, WOLF),),
        TLSFiles(served.cert, served.key, pki / "ca.pem"),
        f"127.0.0.1:{leaf_port}",
    )
    hub_server: NatsServer = configured_nats(tmp_path / "hub", hub_text)
    await hub_server.start()
    try:
        leaf_text = leaf_config(
            wolf.nkey,
            [f"tls://127.0.0.1:{leaf_port}"],
            LeafTLS(leaf_cert.cert, leaf_cert.key, pki / "ca.pem"),
            server_name=f"{WOLF}-leaf",
            # A JetStream of its own, which the wolf's rights keep it from using.
            domain=LEAF_DOMAIN,
            rights=link_permissions(wolf),
        )
        leaf: NatsServer = configured_nats(tmp_path / "leaf", leaf_text)
        await leaf.start()
        try:
            yield Hub(hub_server, leaf, keys)
        finally:
            await leaf.stop()
    finally:
        await hub_server.stop()


async def _until_linked(js: object, deadline_s: float = 20.0) -> None:
    """The leaf dials the hub after it starts: wait until the hub's consumer answers."""
    t0 = time.monotonic()
    while True:
        try:
            if await tier_consumer_ready(js, TIER):  # type: ignore[arg-type]
                return
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
            pass
        assert time.monotonic() - t0 < deadline_s, "the leaf never linked to the hub"


@contextlib.asynccontextmanager
async def bot_and_wolf(hub: Hub) -> AsyncIterator[tuple[NATS, BusConfig, NATS, BusConfig]]:
    """The bot on the hub and the wolf on its leaf, connected as the fleet connects them."""
    bot_cfg = hub.bot()
    bot = await connect(bot_cfg, "bot", first_connect_timeout_s=10)
    wolf_cfg = hub.wolf()
    wolf = await connect(
        wolf_cfg, WOLF, first_connect_timeout_s=10, inbox_prefix=agent_inbox_prefix(WOLF)
    )
    try:
        yield bot, bot_cfg, wolf, wolf_cfg
    finally:
        await wolf.close()
        await bot.close()


@pytest.mark.timeout(60)
async def test_a_wolf_on_a_leaf_pulls_from_the_hub_and_its_result_reaches_the_bot(
    hub: Hub,
) -> None:
    statuses: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_status(msg: Msg) -> None:
        statuses.put_nowait(msg.data)

    async with bot_and_wolf(hub) as (bot, bot_cfg, wolf, wolf_cfg):
        await bot.subscribe(STATUS_SUBJECTS, cb=on_status)
        bot_js = bot.jetstream()
        await ensure_streams(bot_js, bot_cfg, tiers=[TIER])
        task = Task.new("leaf1", "web", "acme/web", 7, TIER)
        await publish_task(bot_js, task)

        js = fleet_jetstream(wolf, wolf_cfg)
        await _until_linked(js)
        sub = await pull_tasks(js, TIER)
        (msg,) = await sub.fetch(1, timeout=10)
        got = Task.from_bytes(msg.data)
        assert got.task_id == task.task_id
        result = Result.for_task(got, Outcome.DONE, Reason.TRIAGED, WOLF, "triaged from afar")
        ack = await publish_result(js, result)
        assert ack.domain == HUB_DOMAIN  # stored in the hub's stream, not the leaf's
        await msg.ack_sync()

        results = await pull_results(bot_js)
        (res_msg,) = await results.fetch(1, timeout=10)
        heard = Result.from_bytes(res_msg.data)
        assert (heard.task_id, heard.wolf, heard.detail) == (
            task.task_id,
            WOLF,
            "triaged from afar",
        )
        await res_msg.ack()
        # Its heartbeat crosses too: the registry bucket is the hub's.
        await (await js.key_value(AGENTS_BUCKET)).put(WOLF, b"alive")
        entry = await (await bot_js.key_value(AGENTS_BUCKET)).get(WOLF)
        assert entry.value == b"alive"
        info = await bot_js.stream_info(TASKS_STREAM, subjects_filter=tier_filter(TIER))
        assert not info.state.subjects  # the ack crossed the link: the task is gone
        # And its status ("every model provider is failing"), on core NATS: the bot's
        # `fleet.status.*` is wider than the link's right, and the hub still offers it.
        await publish_status(wolf, WolfStatus.models_failing(WOLF, "leaf1", {"a": "503"}, 30))
        heard_status = WolfStatus.from_bytes(await asyncio.wait_for(statuses.get(), 10))
        assert (heard_status.wolf, heard_status.providers) == (WOLF, {"a": "503"})


@pytest.mark.timeout(60)
async def test_the_link_carries_only_the_wolfs_own_rights(hub: Hub) -> None:
    async with bot_and_wolf(hub) as (bot, bot_cfg, wolf, wolf_cfg):
        bot_js = bot.jetstream()
        await ensure_streams(bot_js, bot_cfg, tiers=[TIER])
        js = fleet_jetstream(wolf, wolf_cfg)
        await _until_linked(js)
        # Queueing work is the bot's: the hub drops a task sent over the link.
        with pytest.raises((NoStreamResponseError, nats.errors.TimeoutError)):
            await js.publish(f"fleet.tasks.{TIER}.sneak.1", b"{}", stream=TASKS_STREAM, timeout=2)
        # So is a result in another wolf's name.
        other = Result.for_task(
            Task.new("leaf2", "web", "acme/web", 8, TIER), Outcome.DONE, Reason.TRIAGED, "wolf-1"
        )
        with pytest.raises((NoStreamResponseError, nats.errors.TimeoutError)):
            await publish_result(js, other)
        # Nor another wolf's heartbeat.
        with pytest.raises((NoStreamResponseError, nats.errors.TimeoutError)):
            await (await js.key_value(AGENTS_BUCKET)).put("wolf-1", b"forged")
        # And the stream's admin calls.
        with pytest.raises((ServiceUnavailableError, nats.errors.TimeoutError)):
            await js.stream_info(TASKS_STREAM)
        info = await bot_js.stream_info(TASKS_STREAM)
        assert info.state.messages == 0


async def test_only_the_wolfs_key_may_use_its_leaf(hub: Hub) -> None:
    with pytest.raises(BusAuthError):
        await connect(hub.wolf("stranger"), "stranger", first_connect_timeout_s=10)


# What the wolf's own work calls (the control: the link answers it) and what it must not
# touch, all through the hub's domain as a leaf sends it.
_OWN_CALL = f"$JS.{HUB_DOMAIN}.API.CONSUMER.INFO.{TASKS_STREAM}.wolves-{TIER}"
_NOT_ITS_OWN = [
    f"$JS.{HUB_DOMAIN}.API.INFO",
    f"$JS.{HUB_DOMAIN}.API.STREAM.NAMES",
    f"$JS.{HUB_DOMAIN}.API.STREAM.PURGE.{TASKS_STREAM}",
    f"$JS.{HUB_DOMAIN}.API.STREAM.DELETE.{RESULTS_STREAM}",
    f"$JS.{HUB_DOMAIN}.API.STREAM.MSG.GET.{RESULTS_STREAM}",
    f"$JS.{HUB_DOMAIN}.API.DIRECT.GET.{RESULTS_STREAM}",
    f"$JS.{HUB_DOMAIN}.API.STREAM.MSG.DELETE.{TASKS_STREAM}",
    f"$JS.{HUB_DOMAIN}.API.CONSUMER.CREATE.{RESULTS_STREAM}",
    f"$JS.{HUB_DOMAIN}.API.CONSUMER.DURABLE.CREATE.{TASKS_STREAM}.spy",
    f"$JS.{HUB_DOMAIN}.API.CONSUMER.MSG.NEXT.{RESULTS_STREAM}.bot-results",
    f"$JS.{HUB_DOMAIN}.API.CONSUMER.MSG.NEXT.{TASKS_STREAM}.wolves-other",
    f"$JS.{HUB_DOMAIN}.API.CONSUMER.DELETE.{TASKS_STREAM}.wolves-{TIER}",
    f"$JS.{HUB_DOMAIN}.API.STREAM.PURGE.KV_{AGENTS_BUCKET}",
    f"$JS.{HUB_DOMAIN}.API.$KV.{AGENTS_BUCKET}.wolf-1",
]


@pytest.mark.timeout(120)
async def test_through_the_link_a_wolf_reaches_no_stream_it_does_not_work_on(hub: Hub) -> None:
    async with bot_and_wolf(hub) as (bot, bot_cfg, wolf, wolf_cfg):
        await ensure_streams(bot.jetstream(), bot_cfg, tiers=[TIER, "other"])
        await _until_linked(fleet_jetstream(wolf, wolf_cfg))
        answered = []
        for subject in _NOT_ITS_OWN:
            # The control first: a drop below is the link refusing, not a slow link.
            await wolf.request(_OWN_CALL, b"", timeout=5)
            try:
                await wolf.request(subject, b"{}", timeout=1)
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                continue
            answered.append(subject)
        assert answered == []
        assert (await bot.jetstream().stream_info(TASKS_STREAM)).config.name == TASKS_STREAM


@pytest.mark.timeout(60)
async def test_on_its_own_leaf_a_wolf_is_held_to_its_rights(hub: Hub) -> None:
    errors: list[Exception] = []
    changed = asyncio.Event()

    async def on_error(exc: Exception) -> None:
        errors.append(exc)
        changed.set()

    wolf = await connect(
        hub.wolf(),
        WOLF,
        first_connect_timeout_s=10,
        inbox_prefix=agent_inbox_prefix(WOLF),
        on_error=on_error,
    )

    async def refused(what: str) -> None:
        await wait_until(
            lambda: any(what in str(x) for x in errors), changed=changed, timeout=10, what=what
        )

    try:
        # The leaf's own JetStream, the hub's streams' admin, another tier's tasks.
        for subject in (
            "$JS.API.STREAM.CREATE.SPY",
            f"$JS.{HUB_DOMAIN}.API.STREAM.PURGE.{TASKS_STREAM}",
            f"fleet.tasks.{TIER}.forged",
        ):
            await wolf.publish(subject, b"{}")
            await refused(f'permissions violation for publish to "{subject.lower()}"')
        await wolf.subscribe("fleet.>")
        await refused('permissions violation for subscription to "fleet.>"')
    finally:
        await wolf.close()
