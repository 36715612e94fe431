"""The bus on a three-node JetStream cluster: replicated streams, a replica count checked
against what the servers can place, and a stream leader killed with tasks queued."""

from __future__ import annotations

import contextlib
import time

import nats.errors
import pytest
from pydantic import ValidationError

from fleet.local.cluster import NatsCluster
from fleet.local.nats import NatsServer
from fleetcore.bus.config import BusConfig
from fleetcore.bus.connect import connect
from fleetcore.bus.messages import Task, publish_task
from fleetcore.bus.streams import (
    ReplicasError,
    ensure_streams,
    fleet_jetstream,
    pull_tasks,
    queue_depth,
)
from fleetcore.bus.subjects import AGENTS_BUCKET, LIMITS_BUCKET, RESULTS_STREAM, TASKS_STREAM
from fleetcore.config import ConfigError, parse_config

TIER = "clustered"


def _cfg(urls: list[str], replicas: int) -> BusConfig:
    return BusConfig(
        servers=urls, replicas=replicas, reconnect_wait_s=0.05, reconnect_max_wait_s=0.2
    )


async def test_the_cluster_has_one_meta_leader_that_every_node_names(
    nats_cluster: NatsCluster,
) -> None:
    leader = await nats_cluster.meta_leader()
    assert leader in {nats_cluster.node_name(i) for i in range(3)}
    views = [await nats_cluster.meta(i) for i in range(3)]
    assert all(v is not None and v["cluster_size"] == 3 for v in views), views
    assert nats_cluster.meta_leader_seconds is not None
    assert len(set(nats_cluster.urls)) == 3


async def test_every_stream_and_bucket_has_three_replicas_on_three_nodes(
    nats_cluster: NatsCluster,
) -> None:
    cfg = _cfg(nats_cluster.urls, 3)
    nc = await connect(cfg, "admin", first_connect_timeout_s=10)
    try:
        js = fleet_jetstream(nc, cfg)
        await ensure_streams(js, cfg, tiers=[TIER])
        for stream in (TASKS_STREAM, RESULTS_STREAM, f"KV_{AGENTS_BUCKET}", f"KV_{LIMITS_BUCKET}"):
            info = await js.stream_info(stream)
            assert info.config.num_replicas == 3, stream
            assert info.cluster is not None and info.cluster.leader, stream
            assert len(info.cluster.replicas or []) == 2, (stream, info.cluster)
        await ensure_streams(js, cfg, tiers=[TIER])  # a second start changes nothing
    finally:
        await nc.close()


async def test_three_replicas_on_a_single_server_fail_at_start_naming_the_key(
    own_nats: NatsServer,
) -> None:
    cfg = _cfg([own_nats.url], 3)
    nc = await connect(cfg, "admin", first_connect_timeout_s=10)
    try:
        with pytest.raises(ReplicasError, match=r"bus\.replicas is 3.*single server"):
            await ensure_streams(nc.jetstream(), cfg)
        await ensure_streams(nc.jetstream(), _cfg([own_nats.url], 1))  # and 1 is fine
    finally:
        await nc.close()


async def test_more_replicas_than_nodes_fail_at_start_naming_the_key(
    nats_cluster: NatsCluster,
) -> None:
    cfg = _cfg(nats_cluster.urls, 5)
    nc = await connect(cfg, "admin", first_connect_timeout_s=10)
    try:
        with pytest.raises(ReplicasError, match=r"bus\.replicas is 5.*fewer than 5 JetStream"):
            await ensure_streams(nc.jetstream(), cfg)
    finally:
        await nc.close()


def test_replicas_out_of_range_are_a_config_error_naming_the_key() -> None:
    with pytest.raises(ValidationError):
        BusConfig(replicas=6)
    # Heartbeats must outlive a leader failover, or live wolves look dead during one.
    with pytest.raises(ValidationError, match="heartbeat_ttl_s must be at least"):
        BusConfig(replicas=3, heartbeat_s=0.3, heartbeat_ttl_s=1.5)
    BusConfig(replicas=1, heartbeat_s=0.3, heartbeat_ttl_s=1.5)
    base = {
        "matrix": {
            "homeserver": "http://127.0.0.1:8008",
            "user_id": "@hermes:localhost",
            "password": {"env": "UNUSED"},
        },
        "operators": ["@alice:localhost"],
    }
    for bad in (0, 6, "three"):
        with pytest.raises(ConfigError) as info:
            parse_config({**base, "bus": {"replicas": bad}})
        assert [p.path for p in info.value.problems] == ["bus.replicas"], bad
    cfg = parse_config({**base, "bus": {"servers": ["nats://a:4222", "nats://b:4222"]}})
    assert cfg.bus is not None and cfg.bus.replicas == 1


@pytest.mark.timeout(90)
async def test_queued_tasks_survive_their_stream_leader_killed(
    nats_cluster: NatsCluster,
) -> None:
    """SIGKILL the node that leads the tasks stream: another takes over, nothing is lost,
    and a client that was talking to the dead node carries on through another."""
    cfg = _cfg(nats_cluster.urls, 3)
    nc = await connect(cfg, "admin", first_connect_timeout_s=10)
    try:
        js = nc.jetstream()
        await ensure_streams(js, cfg, tiers=[TIER])
        for n in range(1, 21):
            await publish_task(js, Task.new("kill1", "web", "acme/web", n, TIER))
        info = await js.stream_info(TASKS_STREAM)
        assert info.cluster is not None and info.cluster.leader
        dead = nats_cluster.node_index(info.cluster.leader)
        t0 = time.monotonic()
        await nats_cluster.kill_node(dead)
        # Published while the stream has no leader: the publish waits it out and retries.
        await publish_task(js, Task.new("kill1", "web", "acme/web", 21, TIER))
        sub = await pull_tasks(js, TIER)
        seen: set[int] = set()
        first_after: float | None = None
        deadline = time.monotonic() + 60
        while len(seen) < 21 and time.monotonic() < deadline:
            try:
                msgs = await sub.fetch(10, timeout=2)
            except TimeoutError:
                continue
            for msg in msgs:
                seen.add(Task.from_bytes(msg.data).issue_number)
                await msg.ack_sync()
            if first_after is None:
                first_after = time.monotonic() - t0
        all_after = time.monotonic() - t0
        assert seen == set(range(1, 22))
        assert await queue_depth(js, TIER) == 0
        # The dead node may have led the meta group too: info requests wait for its heir.
        leader = None
        while leader is None and time.monotonic() < deadline:
            with contextlib.suppress(nats.errors.TimeoutError):
                leader = (await js.stream_info(TASKS_STREAM)).cluster
        assert leader is not None and leader.leader not in (None, info.cluster.leader), leader
        print(
            f"tasks stream leader {info.cluster.leader} killed; first task {first_after:.2f}s, "
            f"all 21 {all_after:.2f}s; stream info names {leader.leader} after "
            f"{time.monotonic() - t0:.2f}s"
        )
    finally:
        await nc.close()
