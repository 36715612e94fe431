"""Streams and queues on the real session nats-server.

Each test uses its own tier and burn ids, so tests stay independent on the shared streams.
Waiting is done by the server: a `fetch` with a timeout returns when a message arrives.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext

from fleet.local.nats import NatsServer
from fleetcore.bus import subjects
from fleetcore.bus.config import BusConfig
from fleetcore.bus.connect import connect
from fleetcore.bus.messages import Outcome, Reason, Result, Task, publish_result, publish_task
from fleetcore.bus.streams import (
    RESULTS_MAX_AGE_S,
    ensure_streams,
    ensure_tier_consumer,
    pull_tasks,
    queue_depth,
    withdraw_burn,
)

Uid = Callable[[str], str]


def task(burn: str, issue: int, tier: str) -> Task:
    return Task.new(burn, "hermes", "fleet/hermes", issue, tier)


async def fetch_one(sub: JetStreamContext.PullSubscription, timeout: float = 5) -> Msg:
    (msg,) = await sub.fetch(1, timeout=timeout)
    return msg


async def nothing_within(sub: JetStreamContext.PullSubscription, timeout: float) -> bool:
    """True if the consumer hands out nothing for `timeout` seconds."""
    try:
        await sub.fetch(1, timeout=timeout)
    except nats.errors.TimeoutError:
        return True
    return False


async def test_ensure_streams_is_idempotent(
    js: JetStreamContext, cfg: BusConfig, caplog: pytest.LogCaptureFixture
) -> None:
    before = await js.stream_info(subjects.TASKS_STREAM)
    with caplog.at_level(logging.INFO, logger="fleetcore.bus.streams"):
        await ensure_streams(js, cfg, tiers=["idem"])
        await ensure_streams(js, cfg, tiers=["idem"])
    assert "updated" not in caplog.text  # nothing to change, so nothing rewritten
    after = await js.stream_info(subjects.TASKS_STREAM)
    assert after.created == before.created
    assert after.config.retention == "workqueue"
    assert after.config.storage == "file"
    assert after.config.duplicate_window == cfg.duplicate_window_s
    results = await js.stream_info(subjects.RESULTS_STREAM)
    assert results.config.retention == "limits" and results.config.max_age == RESULTS_MAX_AGE_S
    consumer = await js.consumer_info(subjects.TASKS_STREAM, "wolves-idem")
    assert consumer.config.ack_policy == "explicit"
    assert consumer.config.ack_wait == cfg.ack_wait_s
    assert consumer.config.max_deliver == cfg.max_deliver
    assert consumer.config.filter_subject == "fleet.tasks.idem.>"
    bot = await js.consumer_info(subjects.RESULTS_STREAM, subjects.BOT_RESULTS_CONSUMER)
    assert bot.config.ack_policy == "explicit"
    kv = await js.stream_info(f"KV_{subjects.AGENTS_BUCKET}")
    assert kv.config.max_age == cfg.heartbeat_ttl_s


async def test_a_config_change_updates_streams_and_consumers(
    own_nats: NatsServer, make_config: Callable[..., BusConfig], caplog: pytest.LogCaptureFixture
) -> None:
    cfg = make_config(own_nats.url)
    nc = await connect(cfg, "cfg-change", first_connect_timeout_s=10)
    try:
        js = nc.jetstream()
        await ensure_streams(js, cfg, tiers=["fast"])
        changed = make_config(
            own_nats.url, duplicate_window_s=120, ack_wait_s=30, max_deliver=3, heartbeat_ttl_s=9
        )
        with caplog.at_level(logging.INFO, logger="fleetcore.bus"):
            await ensure_streams(js, changed, tiers=["fast"])
        assert "stream_updated" in caplog.text and "registry_ttl_updated" in caplog.text
        assert (await js.stream_info(subjects.TASKS_STREAM)).config.duplicate_window == 120
        consumer = await js.consumer_info(subjects.TASKS_STREAM, "wolves-fast")
        assert (consumer.config.ack_wait, consumer.config.max_deliver) == (30, 3)
        kv = await js.stream_info(f"KV_{subjects.AGENTS_BUCKET}")
        assert kv.config.max_age == 9
        await ensure_streams(js, changed, tiers=["fast"])  # and again, unchanged
    finally:
        await nc.close()


async def test_a_task_published_twice_is_stored_once(js: JetStreamContext, uid: Uid) -> None:
    tier, burn = uid("t"), uid("b")
    first = await publish_task(js, task(burn, 7, tier))
    again = await publish_task(js, task(burn, 7, tier))
    assert not first.duplicate and again.duplicate
    assert again.seq == first.seq and again.stream == subjects.TASKS_STREAM
    assert await queue_depth(js, tier) == 1
    assert await withdraw_burn(js, burn) == 1


async def test_wolves_of_a_tier_share_one_queue(
    js: JetStreamContext, cfg: BusConfig, uid: Uid
) -> None:
    tier, burn = uid("t"), uid("b")
    await ensure_tier_consumer(js, cfg, tier)
    wolves: list[Client] = [await connect(cfg, f"wolf-{i}") for i in range(2)]
    try:
        subs = [await pull_tasks(w.jetstream(), tier) for w in wolves]
        for issue in (1, 2):
            await publish_task(js, task(burn, issue, tier))
        got = [await fetch_one(sub) for sub in subs]
        ids = {Task.from_bytes(m.data).task_id for m in got}
        assert ids == {f"{burn}-1", f"{burn}-2"}
        for msg in got:
            await msg.ack_sync()
        # Both were consumed once: neither wolf gets anything more.
        assert await nothing_within(subs[0], 0.3)
        assert await queue_depth(js, tier) == 0
    finally:
        for w in wolves:
            await w.close()


async def test_an_unacked_task_is_redelivered_after_ack_wait(
    js: JetStreamContext, make_config: Callable[..., BusConfig], cfg: BusConfig, uid: Uid
) -> None:
    tier, burn = uid("t"), uid("b")
    quick = make_config(cfg.servers[0], ack_wait_s=0.5)
    await ensure_tier_consumer(js, quick, tier)
    sub = await pull_tasks(js, tier)
    await publish_task(js, task(burn, 1, tier))
    first = await fetch_one(sub)
    assert first.metadata.num_delivered == 1
    t0 = time.monotonic()
    again = await fetch_one(sub, timeout=10)  # the crashed wolf never acks
    assert time.monotonic() - t0 >= 0.3
    assert Task.from_bytes(again.data).task_id == f"{burn}-1"
    assert again.metadata.num_delivered == 2
    await again.ack_sync()


async def test_in_progress_keeps_a_long_task(
    js: JetStreamContext, make_config: Callable[..., BusConfig], cfg: BusConfig, uid: Uid
) -> None:
    tier, burn = uid("t"), uid("b")
    await ensure_tier_consumer(js, make_config(cfg.servers[0], ack_wait_s=1.0), tier)
    sub = await pull_tasks(js, tier)
    await publish_task(js, task(burn, 1, tier))
    msg = await fetch_one(sub)
    for _ in range(5):  # 5 x 0.3s: longer than the ack wait, yet no redelivery
        assert await nothing_within(sub, 0.3)
        await msg.in_progress()
    await msg.ack_sync()
    assert await nothing_within(sub, 0.8)


async def test_nak_with_delay_holds_the_task_back(
    js: JetStreamContext, cfg: BusConfig, uid: Uid
) -> None:
    tier, burn = uid("t"), uid("b")
    await ensure_tier_consumer(js, cfg, tier)
    sub = await pull_tasks(js, tier)
    await publish_task(js, task(burn, 1, tier))
    msg = await fetch_one(sub)
    t0 = time.monotonic()
    await msg.nak(delay=1.0)
    assert await nothing_within(sub, 0.5)
    again = await fetch_one(sub, timeout=10)
    assert time.monotonic() - t0 >= 0.9
    assert again.metadata.num_delivered == 2
    await again.ack_sync()


async def test_term_stops_redelivery_and_max_deliver_caps_it(
    js: JetStreamContext, make_config: Callable[..., BusConfig], cfg: BusConfig, uid: Uid
) -> None:
    tier, burn = uid("t"), uid("b")
    await ensure_tier_consumer(js, make_config(cfg.servers[0], ack_wait_s=0.3, max_deliver=2), tier)
    sub = await pull_tasks(js, tier)
    await publish_task(js, task(burn, 1, tier))
    await publish_task(js, task(burn, 2, tier))
    a, b = await sub.fetch(2, timeout=5)
    poison = a if Task.from_bytes(a.data).issue_number == 1 else b
    crashy = b if poison is a else a
    await poison.term()
    again = await fetch_one(sub, timeout=10)  # only the unacked one comes back
    assert again.data == crashy.data and again.metadata.num_delivered == 2
    assert await nothing_within(sub, 0.8)  # and not a third time


async def test_withdraw_burn_removes_only_that_burn(
    js: JetStreamContext, cfg: BusConfig, uid: Uid
) -> None:
    fast, slow = uid("t"), uid("t")
    burn, other = uid("b"), uid("b")
    for issue in (1, 2):
        await publish_task(js, task(burn, issue, fast))
    await publish_task(js, task(burn, 3, slow))
    await publish_task(js, task(other, 4, fast))
    assert await queue_depth(js, fast) == 3  # no consumer yet: counted in the stream
    assert await withdraw_burn(js, burn) == 3
    assert await withdraw_burn(js, burn) == 0
    assert await queue_depth(js, fast) == 1
    assert await queue_depth(js, slow) == 0
    await ensure_tier_consumer(js, cfg, fast)
    assert await queue_depth(js, fast) == 1  # now counted by the consumer
    msg = await fetch_one(await pull_tasks(js, fast))
    assert Task.from_bytes(msg.data).task_id == f"{other}-4"
    await msg.ack_sync()
    assert await queue_depth(js, fast) == 0


async def test_a_withdrawn_burn_cannot_be_a_wildcard(js: JetStreamContext) -> None:
    with pytest.raises(ValueError):
        await withdraw_burn(js, "*")


async def test_a_result_is_deduplicated_by_task_id(js: JetStreamContext, uid: Uid) -> None:
    t = Task.new(uid("b"), uid("p"), "fleet/hermes", 5, "fast")
    result = Result.for_task(t, Outcome.DONE, Reason.TRIAGED, "wolf-1", "commented")
    first = await publish_result(js, result)
    again = await publish_result(js, result)
    assert again.duplicate and again.seq == first.seq
    info = await js.stream_info(
        subjects.RESULTS_STREAM, subjects_filter=subjects.result_subject(t.project, "wolf-1")
    )
    assert info.state.subjects == {subjects.result_subject(t.project, "wolf-1"): 1}


async def test_publishing_to_a_tier_without_wolves_still_queues(
    js: JetStreamContext, uid: Uid
) -> None:
    """A burn may be sent before any wolf of its tier ever started; nothing is lost."""
    tier, burn = uid("t"), uid("b")
    await publish_task(js, task(burn, 1, tier))
    assert await queue_depth(js, tier) == 1
    assert await withdraw_burn(js, burn) == 1
