"""Least privilege on a real nats-server, with the configuration the fleet generates.

Every "cannot" case proves the attempt reached the server and was refused: it waits for
the server's own permissions violation naming the subject, never for a silence. Every
"can" case is the same agent doing its work on the same server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from agents.budget import FleetBudget, open_limits
from fleet.local.nats import NatsServer, ensure_nkey_seed
from fleetcore.bus.auth import AgentUser, BusUsers, agent_inbox_prefix, server_config
from fleetcore.bus.config import BusConfig
from fleetcore.bus.connect import BusAuthError, connect
from fleetcore.bus.messages import (
    AgentRecord,
    Outcome,
    Reason,
    Result,
    Task,
    publish_result,
    publish_task,
    utcnow,
)
from fleetcore.bus.registry import Registry
from fleetcore.bus.status import WolfStatus, publish_status
from fleetcore.bus.streams import (
    ensure_streams,
    pull_results,
    pull_tasks,
    queue_depth,
    tier_consumer_ready,
)
from fleetcore.bus.subjects import (
    AGENTS_BUCKET,
    RESULTS_STREAM,
    STATUS_SUBJECTS,
    TASKS_STREAM,
    result_subject,
    status_subject,
    task_subject,
    tier_consumer,
)
from fleettest.wait import wait_until

TIER = "work"
OTHER_TIER = "other"


def _cfg(url: str, seed: Path | None) -> BusConfig:
    return BusConfig(
        servers=[url], nkey_seed_file=seed, reconnect_wait_s=0.05, reconnect_max_wait_s=0.2
    )


class ServerErrors:
    """What the server told one client asynchronously, to wait on."""

    def __init__(self) -> None:
        self.errors: list[Exception] = []
        self.changed = asyncio.Event()

    async def on_error(self, exc: Exception) -> None:
        self.errors.append(exc)
        self.changed.set()

    async def violation(self, kind: str, subject: str) -> str:
        """Until the server refuses `kind` ("publish"/"subscription") to `subject...`.

        nats-py lower-cases the server's `-ERR` line, subject included.
        """
        expected = f'permissions violation for {kind} to "{subject.lower()}'

        def seen() -> str | None:
            return next((str(e) for e in self.errors if expected in str(e)), None)

        await wait_until(seen, changed=self.changed, timeout=10, what=expected)
        found = seen()
        assert found is not None
        return found

    def violations(self) -> list[str]:
        return [str(e) for e in self.errors if "permissions violation" in str(e)]

    async def revoked(self) -> None:
        """Until the server refuses this client's user: it dropped the live connection and
        answers every reconnection with an authorization violation."""
        await wait_until(
            lambda: any("authorization violation" in str(e).lower() for e in self.errors),
            changed=self.changed,
            timeout=10,
            what="an authorization violation",
        )


@dataclass
class AuthBus:
    server: NatsServer
    users: BusUsers
    keys: Path
    bot: Client
    js: JetStreamContext

    def seed(self, name: str) -> Path:
        return self.keys / f"{name}.nk"

    async def agent(self, name: str) -> tuple[Client, ServerErrors]:
        errors = ServerErrors()
        nc = await connect(
            _cfg(self.server.url, self.seed(name)),
            f"wolf-{name}",
            inbox_prefix=agent_inbox_prefix(name),
            on_error=errors.on_error,
            first_connect_timeout_s=10,
        )
        return nc, errors


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[AuthBus]:
    keys = tmp_path / "keys"
    bot_key = ensure_nkey_seed(keys / "bot.nk")
    agents = tuple(
        AgentUser(name, ensure_nkey_seed(keys / f"{name}.nk"), tier)
        for name, tier in (("alice", TIER), ("bob", TIER), ("carol", OTHER_TIER))
    )
    users = BusUsers(bot_key, agents)
    server = NatsServer(tmp_path / "nats", config=server_config(users))
    await server.start()
    bot: Client | None = None
    try:
        bot = await connect(_cfg(server.url, keys / "bot.nk"), "bot", first_connect_timeout_s=10)
        js = bot.jetstream()
        await ensure_streams(js, _cfg(server.url, None), tiers=[TIER, OTHER_TIER])
        yield AuthBus(server, users, keys, bot, js)
    finally:
        if bot is not None:
            await bot.close()
        await server.stop()


@pytest.fixture
async def alice(bus: AuthBus) -> AsyncIterator[tuple[Client, ServerErrors]]:
    nc, errors = await bus.agent("alice")
    try:
        yield nc, errors
    finally:
        await nc.close()


async def _refused(
    errors: ServerErrors, attempt: Awaitable[object], subject: str, kind: str = "publish"
) -> str:
    """Start `attempt`, wait for the server to refuse it, then abandon it (a refused
    JetStream request gets no reply, so it would only time out)."""
    task = asyncio.ensure_future(attempt)
    try:
        return await errors.violation(kind, subject)
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


def _task(burn: str = "b1", number: int = 1) -> Task:
    return Task.new(burn, "web", "acme/web", number, TIER)


def _record(name: str) -> AgentRecord:
    now = utcnow()
    return AgentRecord(name=name, tier=TIER, model="m", started_at=now, heartbeat_at=now)


# -- what an agent can do -------------------------------------------------------------------


async def test_can_fetch_ack_and_publish_its_result(
    bus: AuthBus, alice: tuple[Client, ServerErrors]
) -> None:
    nc, errors = alice
    task = _task()
    await publish_task(bus.js, task)
    js = nc.jetstream()
    assert await tier_consumer_ready(js, TIER)
    sub = await pull_tasks(js, TIER)
    [msg] = await sub.fetch(1, timeout=10)
    assert Task.from_bytes(msg.data).task_id == task.task_id
    await msg.in_progress()
    result = Result.for_task(task, Outcome.DONE, Reason.TRIAGED, "alice", "commented")
    ack = await publish_result(js, result)
    assert ack.stream == RESULTS_STREAM
    await msg.ack_sync()
    assert await queue_depth(bus.js, TIER) == 0
    [got] = await (await pull_results(bus.js)).fetch(1, timeout=10)
    assert got.subject == result_subject("web", "alice") == "fleet.results.web.alice"
    assert Result.from_bytes(got.data).wolf == "alice"
    assert errors.violations() == []


async def test_can_nak_a_task_back_to_its_tier(
    bus: AuthBus, alice: tuple[Client, ServerErrors]
) -> None:
    nc, errors = alice
    await publish_task(bus.js, _task("b-nak"))
    sub = await pull_tasks(nc.jetstream(), TIER)
    [msg] = await sub.fetch(1, timeout=10)
    await msg.nak()
    [again] = await sub.fetch(1, timeout=10)
    assert again.metadata.num_delivered == 2
    await again.term()
    assert errors.violations() == []


async def test_can_heartbeat_and_read_the_registry(
    bus: AuthBus, alice: tuple[Client, ServerErrors]
) -> None:
    nc, errors = alice
    bob, _ = await bus.agent("bob")
    try:
        await (await Registry.open(bob.jetstream())).beat(_record("bob"))
    finally:
        await bob.close()
    registry = await Registry.open(nc.jetstream())
    await registry.beat(_record("alice"))
    assert await registry.alive("bob") and await registry.alive("alice")
    await registry.remove("alice")
    assert not await registry.alive("alice")
    assert errors.violations() == []


async def test_can_count_the_fleet_comment_budget(
    bus: AuthBus, alice: tuple[Client, ServerErrors]
) -> None:
    nc, errors = alice
    budget = FleetBudget(await open_limits(nc.jetstream()), per_hour=1)
    assert await budget.take() is None
    assert await budget.take() is not None  # the one slot is spent
    assert errors.violations() == []


async def test_can_tell_its_own_status_to_the_bot(
    bus: AuthBus, alice: tuple[Client, ServerErrors]
) -> None:
    nc, errors = alice
    heard: asyncio.Queue[tuple[str, WolfStatus]] = asyncio.Queue()

    async def on_status(msg: Msg) -> None:
        heard.put_nowait((msg.subject, WolfStatus.from_bytes(msg.data)))

    await bus.bot.subscribe(STATUS_SUBJECTS, cb=on_status)
    await bus.bot.flush()
    await publish_status(nc, WolfStatus.models_failing("alice", "b1", {"openai": "503"}, 30))
    subject, status = await asyncio.wait_for(heard.get(), 10)
    assert subject == status_subject("alice") == "fleet.status.alice"
    assert status.providers == {"openai": "503"} and status.wolf == "alice"
    assert errors.violations() == []


# -- what an agent cannot do ----------------------------------------------------------------


@pytest.mark.parametrize("subject", ["fleet.status.bob", "fleet.status.alice.x", "fleet.status"])
async def test_cannot_tell_a_status_but_its_own(
    bus: AuthBus, alice: tuple[Client, ServerErrors], subject: str
) -> None:
    nc, errors = alice
    await nc.publish(subject, b"{}")
    await errors.violation("publish", subject)


async def test_cannot_read_other_agents_statuses(alice: tuple[Client, ServerErrors]) -> None:
    nc, errors = alice
    await nc.subscribe(STATUS_SUBJECTS)
    await errors.violation("subscription", STATUS_SUBJECTS)


async def test_cannot_publish_into_the_task_stream(
    bus: AuthBus, alice: tuple[Client, ServerErrors]
) -> None:
    nc, errors = alice
    subject = task_subject(TIER, "forged")
    await nc.publish(subject, b"{}")
    await errors.violation("publish", subject)
    await _refused(errors, publish_task(nc.jetstream(), _task("forged-js")), "fleet.tasks.")
    assert await queue_depth(bus.js, TIER) == 0


@pytest.mark.parametrize("stream", [TASKS_STREAM, RESULTS_STREAM, f"KV_{AGENTS_BUCKET}"])
async def test_cannot_create_a_consumer(
    bus: AuthBus, alice: tuple[Client, ServerErrors], stream: str
) -> None:
    # A push consumer delivering to alice's own inbox: allowed, it would hand her every
    # message of the stream, since the server does not check the deliver subject.
    nc, errors = alice
    config = ConsumerConfig(
        deliver_subject=nc.new_inbox(), deliver_policy=DeliverPolicy.ALL, durable_name="spy"
    )
    attempt = nc.jetstream().add_consumer(stream, config)
    found = await _refused(errors, attempt, "$JS.API.CONSUMER.")
    assert ".create." in found and f".{stream.lower()}." in found, found
    consumers = await bus.js.consumers_info(stream)
    assert "spy" not in {c.name for c in consumers}


@pytest.mark.parametrize("inbox", ["_INBOX_bob.>", "_INBOX.>", "_INBOX_bob.abc"])
async def test_cannot_read_another_agents_inbox(
    alice: tuple[Client, ServerErrors], inbox: str
) -> None:
    nc, errors = alice
    await nc.subscribe(inbox)
    await errors.violation("subscription", inbox)


async def test_cannot_read_results_by_subscribing(alice: tuple[Client, ServerErrors]) -> None:
    nc, errors = alice
    await nc.subscribe("fleet.results.>")
    await errors.violation("subscription", "fleet.results.>")


async def test_cannot_pull_the_bots_results(
    bus: AuthBus, alice: tuple[Client, ServerErrors]
) -> None:
    nc, errors = alice
    sub = await pull_results(nc.jetstream())
    await _refused(
        errors, sub.fetch(1, timeout=10), f"$JS.API.CONSUMER.MSG.NEXT.{RESULTS_STREAM}.bot-results"
    )


async def test_cannot_get_a_result_from_the_stream(
    bus: AuthBus, alice: tuple[Client, ServerErrors]
) -> None:
    task = _task("b-get")
    await publish_result(bus.js, Result.for_task(task, Outcome.DONE, Reason.TRIAGED, "bob", "x"))
    nc, errors = alice
    attempt = nc.jetstream().get_msg(RESULTS_STREAM, seq=1)
    await _refused(errors, attempt, f"$JS.API.STREAM.MSG.GET.{RESULTS_STREAM}")


async def test_cannot_report_as_another_agent(
    bus: AuthBus, alice: tuple[Client, ServerErrors]
) -> None:
    nc, errors = alice
    forged = Result.for_task(_task("b-forged"), Outcome.DONE, Reason.TRIAGED, "bob", "forged")
    await _refused(errors, publish_result(nc.jetstream(), forged), "fleet.results.web.bob")
    info = await bus.js.stream_info(RESULTS_STREAM)
    assert info.state.messages == 0


async def test_cannot_write_another_agents_heartbeat(
    bus: AuthBus, alice: tuple[Client, ServerErrors]
) -> None:
    nc, errors = alice
    registry = await Registry.open(nc.jetstream())
    await _refused(errors, registry.beat(_record("bob")), f"$KV.{AGENTS_BUCKET}.bob")
    await _refused(errors, registry.remove("bob"), f"$KV.{AGENTS_BUCKET}.bob")
    assert not await Registry(await bus.js.key_value(AGENTS_BUCKET)).alive("bob")


@pytest.mark.parametrize(
    "subject",
    [
        f"$JS.API.STREAM.DELETE.KV_{AGENTS_BUCKET}",
        f"$JS.API.STREAM.PURGE.KV_{AGENTS_BUCKET}",
        f"$JS.API.STREAM.PURGE.{TASKS_STREAM}",
        f"$JS.API.STREAM.UPDATE.{TASKS_STREAM}",
        f"$JS.API.CONSUMER.DELETE.{TASKS_STREAM}.{tier_consumer(TIER)}",
    ],
)
async def test_cannot_administer_streams_or_buckets(
    alice: tuple[Client, ServerErrors], subject: str
) -> None:
    nc, errors = alice
    await _refused(errors, nc.request(subject, b"{}", timeout=10), subject)


async def test_cannot_pull_another_tiers_tasks(
    bus: AuthBus, alice: tuple[Client, ServerErrors]
) -> None:
    nc, errors = alice
    sub = await pull_tasks(nc.jetstream(), OTHER_TIER)
    durable = tier_consumer(OTHER_TIER)
    await _refused(
        errors, sub.fetch(1, timeout=10), f"$JS.API.CONSUMER.MSG.NEXT.{TASKS_STREAM}.{durable}"
    )


async def test_a_wrong_seed_is_refused(bus: AuthBus) -> None:
    stranger = ensure_nkey_seed(bus.keys / "stranger.nk")
    assert stranger not in {a.nkey for a in bus.users.agents}
    with pytest.raises(BusAuthError, match=f"rejected wolf-stranger's nkey {stranger}"):
        await connect(_cfg(bus.server.url, bus.seed("stranger")), "wolf-stranger")


async def test_a_removed_agent_is_cut_off_by_the_reload(
    bus: AuthBus, alice: tuple[Client, ServerErrors]
) -> None:
    nc, errors = alice
    bob, bob_errors = await bus.agent("bob")
    try:
        await bus.server.reconfigure(server_config(bus.users.without_agent("alice")))
        await errors.revoked()
        assert not nc.is_connected
        with pytest.raises(BusAuthError, match="rejected wolf-alice"):
            await connect(_cfg(bus.server.url, bus.seed("alice")), "wolf-alice")
        # Everyone else keeps working on the same server, JetStream included (a reload of
        # a server whose JetStream came from flags alone would have shut it down).
        await publish_task(bus.js, _task("after-reload"))
        [msg] = await (await pull_tasks(bob.jetstream(), TIER)).fetch(1, timeout=10)
        await msg.ack_sync()
        assert bob.is_connected and bob_errors.errors == []
    finally:
        await bob.close()
