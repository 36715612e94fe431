"""Creating the bus's streams, consumers and registry bucket, and managing queued work.

Both the bot and every wolf call `ensure_streams` at start: whoever comes first creates
everything, the rest find it in place, and a changed config (say a longer ack_wait) is
applied rather than refused, so rolling out a new setting needs no manual step.

Every stream and bucket has `bus.replicas` copies. A client cannot ask a server how big
its cluster is (that takes the system account), so the check is the server's own
placement answer at start: a single server refuses more than one replica (10074), a
cluster with fewer JetStream servers up than replicas finds no peers (10005). Either way
`ensure_streams` raises `ReplicasError`, naming `bus.replicas`, before anything else runs.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from typing import Any

from nats.aio.client import Client
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    ConsumerInfo,
    DeliverPolicy,
    KeyValueConfig,
    PubAck,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamInfo,
)
from nats.js.client import JetStreamContext
from nats.js.errors import APIError, BadRequestError, NotFoundError
from nats.js.kv import KeyValue

from fleetcore.bus.config import BusConfig
from fleetcore.bus.subjects import (
    AGENTS_BUCKET,
    BOT_RESULTS_CONSUMER,
    LIMITS_BUCKET,
    RESULTS_STREAM,
    RESULTS_SUBJECTS,
    TASKS_STREAM,
    TASKS_SUBJECTS,
    burn_filter,
    tier_consumer,
    tier_filter,
)
from fleetcore.log import fields

log = logging.getLogger(__name__)

# Results are the record of what the fleet did; a month covers any report the bot makes.
RESULTS_MAX_AGE_S = 30 * 86400.0
# The server's "stream name already in use with a different configuration".
_STREAM_NAME_IN_USE = 10058
# nats-py's create_key_value caps a bucket's duplicate window at two minutes.
_KV_MAX_DUPLICATE_WINDOW_S = 120.0
# The server's answers to more replicas than it can place: "replicas > 1 not supported in
# non-clustered mode", "no suitable peers for placement", "insufficient resources".
_NOT_CLUSTERED = 10074
_NO_PEERS = 10005
_INSUFFICIENT_RESOURCES = 10023


class ReplicasError(ValueError):
    """`bus.replicas` asks for more copies than the NATS servers can hold."""


def fleet_jetstream(nc: Client, cfg: BusConfig) -> JetStreamContext:
    """JetStream as `cfg` reaches it: through the hub's domain from a leaf node."""
    if cfg.jetstream_domain is None:
        return nc.jetstream()
    return DomainJetStream(nc, cfg.jetstream_domain)


class DomainJetStream(JetStreamContext):
    """JetStream in another server's domain, bucket writes included.

    nats-server refuses `$KV.>` across a leaf link into another domain, and the hub maps
    `$JS.<domain>.API.$KV.>` onto `$KV.>` instead (as nats.go writes there). nats-py 2.16
    writes a bucket's keys to `$KV.<bucket>.<key>` whatever the domain, so here every
    write to a bucket takes the domain's way; reads already go through the domain's API.
    """

    def __init__(self, nc: Client, domain: str) -> None:
        super().__init__(nc, domain=domain)
        self.kv_write_prefix = f"$JS.{domain}.API."

    async def publish(
        self,
        subject: str,
        payload: bytes = b"",
        timeout: float | None = None,
        stream: str | None = None,
        headers: dict[str, Any] | None = None,
        msg_ttl: float | None = None,
    ) -> PubAck:
        if subject.startswith("$KV."):
            subject = self.kv_write_prefix + subject
        return await super().publish(subject, payload, timeout, stream, headers, msg_ttl)


def tasks_stream_config(cfg: BusConfig) -> StreamConfig:
    return StreamConfig(
        name=TASKS_STREAM,
        description="Fleet tasks: one message per issue to triage, removed when a wolf acks it",
        subjects=[TASKS_SUBJECTS],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        duplicate_window=cfg.duplicate_window_s,
        num_replicas=cfg.replicas,
    )


def results_stream_config(cfg: BusConfig) -> StreamConfig:
    return StreamConfig(
        name=RESULTS_STREAM,
        description="Fleet results: what each wolf did with each task",
        subjects=[RESULTS_SUBJECTS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=RESULTS_MAX_AGE_S,
        duplicate_window=min(cfg.duplicate_window_s, RESULTS_MAX_AGE_S),
        num_replicas=cfg.replicas,
    )


def tier_consumer_config(cfg: BusConfig, tier: str) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=tier_consumer(tier),
        description=f"Wolves of tier {tier}, sharing one queue",
        filter_subject=tier_filter(tier),
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=cfg.ack_wait_s,
        max_deliver=cfg.max_deliver,
    )


def bot_results_consumer_config(cfg: BusConfig) -> ConsumerConfig:
    # Unlimited deliveries: a result the bot failed to handle is retried, never dropped;
    # the bot terminates a malformed one itself.
    return ConsumerConfig(
        durable_name=BOT_RESULTS_CONSUMER,
        description="The bot reading every result",
        filter_subject=RESULTS_SUBJECTS,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=cfg.ack_wait_s,
        max_deliver=-1,
    )


def _differs(current: StreamConfig, wanted: StreamConfig) -> list[str]:
    out = []
    for f in dataclasses.fields(wanted):
        value = getattr(wanted, f.name)
        if value is not None and getattr(current, f.name) != value:
            out.append(f.name)
    return out


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> StreamInfo:
    assert config.name is not None
    try:
        info = await js.stream_info(config.name)
    except NotFoundError:
        try:
            return await js.add_stream(config)
        except BadRequestError as exc:
            if exc.err_code != _STREAM_NAME_IN_USE:  # not lost a creation race: a real error
                raise
        info = await js.stream_info(config.name)
    changed = _differs(info.config, config)
    if not changed:
        return info
    log.info("stream_updated", extra=fields(stream=config.name, changed=changed))
    return await js.update_stream(config)


async def ensure_tier_consumer(js: JetStreamContext, cfg: BusConfig, tier: str) -> ConsumerInfo:
    """Create (or update) the one durable consumer that all wolves of `tier` pull from."""
    return await js.add_consumer(TASKS_STREAM, tier_consumer_config(cfg, tier))


async def ensure_registry(js: JetStreamContext, cfg: BusConfig) -> KeyValue:
    """The agents bucket, its TTL set so a wolf that stops beating disappears by itself."""
    try:
        return await js.create_key_value(
            KeyValueConfig(
                bucket=AGENTS_BUCKET,
                description="Live wolves; entries expire when heartbeats stop",
                history=1,
                ttl=cfg.heartbeat_ttl_s,
                storage=StorageType.FILE,
                replicas=cfg.replicas,
            )
        )
    except BadRequestError as exc:
        if exc.err_code != _STREAM_NAME_IN_USE:
            raise
    # The bucket exists with other settings (a changed heartbeat_ttl_s or replica count):
    # update its stream.
    stream = f"KV_{AGENTS_BUCKET}"
    info = await js.stream_info(stream)
    updated = dataclasses.replace(
        info.config,
        max_age=cfg.heartbeat_ttl_s,
        duplicate_window=min(cfg.heartbeat_ttl_s, _KV_MAX_DUPLICATE_WINDOW_S),
        num_replicas=cfg.replicas,
    )
    log.info("registry_ttl_updated", extra=fields(bucket=AGENTS_BUCKET, ttl_s=cfg.heartbeat_ttl_s))
    await js.update_stream(updated)
    return await js.key_value(AGENTS_BUCKET)


# An hour's comment counter is useless after the hour.
LIMITS_TTL_S = 2 * 3600.0


async def ensure_limits(js: JetStreamContext, cfg: BusConfig) -> KeyValue:
    """The fleet-wide counters bucket (agents/budget.py counts comments in it)."""
    try:
        return await js.create_key_value(
            KeyValueConfig(
                bucket=LIMITS_BUCKET,
                description="Fleet-wide counters: comments posted per hour",
                history=1,
                ttl=LIMITS_TTL_S,
                storage=StorageType.FILE,
                replicas=cfg.replicas,
            )
        )
    except BadRequestError as exc:
        if exc.err_code != _STREAM_NAME_IN_USE:
            raise
    info = await js.stream_info(f"KV_{LIMITS_BUCKET}")
    if info.config.num_replicas != cfg.replicas:  # a fleet grown from one server to three
        await js.update_stream(dataclasses.replace(info.config, num_replicas=cfg.replicas))
    return await js.key_value(LIMITS_BUCKET)


async def ensure_streams(js: JetStreamContext, cfg: BusConfig, tiers: Iterable[str] = ()) -> None:
    """Everything the bus needs, made by its administrator (the bot, or a test).

    Safe to call at every start. Wolves never call it: an agent's user may not create
    streams, consumers or buckets, so the bot makes each tier's consumer for them.
    Raises `ReplicasError` when `cfg.replicas` is more than the servers can place.
    """
    try:
        await ensure_stream(js, tasks_stream_config(cfg))
    except APIError as exc:
        refused = _replicas_error(exc, cfg)
        if refused is None:
            raise
        raise refused from None
    await ensure_stream(js, results_stream_config(cfg))
    for tier in tiers:
        await ensure_tier_consumer(js, cfg, tier)
    await js.add_consumer(RESULTS_STREAM, bot_results_consumer_config(cfg))
    await ensure_registry(js, cfg)
    await ensure_limits(js, cfg)


def _replicas_error(exc: APIError, cfg: BusConfig) -> ReplicasError | None:
    """The server's refusal of the first stream, said in terms of the config; None for
    any other error."""
    if cfg.replicas > 1 and exc.err_code == _NOT_CLUSTERED:
        return ReplicasError(
            f"bus.replicas is {cfg.replicas}, but the NATS server is a single server, not a "
            "cluster: set bus.replicas to 1, or list the nodes of a JetStream cluster in "
            "bus.servers"
        )
    if cfg.replicas > 1 and exc.err_code in (_NO_PEERS, _INSUFFICIENT_RESOURCES):
        return ReplicasError(
            f"bus.replicas is {cfg.replicas}, but the NATS cluster has fewer than "
            f"{cfg.replicas} JetStream servers up (the server said: {exc.description}): "
            "start the missing nodes, or lower bus.replicas to the cluster's size"
        )
    return None


async def pull_tasks(js: JetStreamContext, tier: str) -> JetStreamContext.PullSubscription:
    """A wolf's subscription: bound to the tier's shared consumer, never creating its own."""
    return await js.pull_subscribe_bind(durable=tier_consumer(tier), stream=TASKS_STREAM)


async def tier_consumer_ready(js: JetStreamContext, tier: str) -> bool:
    """Whether the bot has made `tier`'s consumer yet (an agent may ask, not create)."""
    try:
        await js.consumer_info(TASKS_STREAM, tier_consumer(tier))
    except NotFoundError:
        return False
    return True


async def pull_results(js: JetStreamContext) -> JetStreamContext.PullSubscription:
    return await js.pull_subscribe_bind(durable=BOT_RESULTS_CONSUMER, stream=RESULTS_STREAM)


async def queue_depth(js: JetStreamContext, tier: str) -> int:
    """Tasks of `tier` waiting for a wolf (not counting those a wolf is working on).

    Before any wolf of the tier has started there is no consumer; then every stored task of
    the tier is waiting, which the stream's per-subject counts tell.
    """
    try:
        info = await js.consumer_info(TASKS_STREAM, tier_consumer(tier))
    except NotFoundError:
        return await _stored(js, tier_filter(tier))
    return int(info.num_pending or 0)


async def _stored(js: JetStreamContext, subject_filter: str) -> int:
    info = await js.stream_info(TASKS_STREAM, subjects_filter=subject_filter)
    return sum((info.state.subjects or {}).values())


async def withdraw_burn(js: JetStreamContext, burn_id: str) -> int:
    """Remove a burn's queued tasks from every tier and say how many went.

    Tasks a wolf already holds are removed too; its ack then finds nothing, and the claim
    protocol keeps it from posting twice if anything is redelivered.
    """
    subject = burn_filter(burn_id)
    # nats-py's purge_stream returns only success, not the server's count, so count the
    # burn's stored tasks before and after. Only the bot publishes a burn's tasks, and not
    # while it stops that burn; a task a wolf acks in between counts as withdrawn, as a
    # task held by a wolf and purged does.
    before = await _stored(js, subject)
    if before:
        await js.purge_stream(TASKS_STREAM, subject=subject)
    purged = before - await _stored(js, subject)
    log.info("burn_withdrawn", extra=fields(burn_id=burn_id, purged=purged))
    return purged
