"""`fleet wolf`: a worker that takes its tier's tasks from JetStream and triages them.

A thin async shell around `agents.triage.Triager`: it pulls tasks from the tier's shared
durable consumer (each task reaches one wolf), tells JetStream a long task is in progress,
publishes the result, and acks only after that. A rate-limited task goes back with a
delay; a task that can never succeed is terminated with a failed result; a task that hits
its last delivery reports failure instead of vanishing, so a burn always completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError

from agents.budget import FleetBudget, open_limits
from agents.triage import (
    Alive,
    Announce,
    CommentBudget,
    Disposition,
    StartedAt,
    TaskOutcome,
    Triager,
    WorkingOn,
)
from fleetcore.bus.auth import agent_inbox_prefix
from fleetcore.bus.config import BusConfig
from fleetcore.bus.connect import connect
from fleetcore.bus.messages import (
    AgentRecord,
    BadMessage,
    Outcome,
    Reason,
    Result,
    Task,
    publish_result,
    sign_result,
    utcnow,
)
from fleetcore.bus.registry import Heartbeat, Registry
from fleetcore.bus.status import WolfStatus, publish_status, sign_status
from fleetcore.bus.streams import fleet_jetstream, pull_tasks, tier_consumer_ready
from fleetcore.bus.subjects import AGENTS_BUCKET, LIMITS_BUCKET, tier_consumer
from fleetcore.forge.client import GiteaClient
from fleetcore.identity.nostr import NostrKey
from fleetcore.log import fields
from fleetcore.models.chain import Completion, FallbackChain
from fleetcore.retry import Backoff

log = logging.getLogger("hermes.wolf")


class HourlyBudget(CommentBudget):
    """A sliding hour: the answer is how long to wait until the next comment is allowed."""

    def __init__(self, per_hour: int, clock: object = time.monotonic) -> None:
        self.per_hour = per_hour
        self._clock = clock
        self._stamps: deque[float] = deque()

    async def peek(self) -> float | None:
        now = self._clock()  # type: ignore[operator]
        while self._stamps and now - self._stamps[0] >= 3600:
            self._stamps.popleft()
        if len(self._stamps) >= self.per_hour:
            return max(1.0, 3600 - (now - self._stamps[0]))
        return None

    async def take(self) -> float | None:
        wait = await self.peek()
        if wait is None:
            self._stamps.append(self._clock())  # type: ignore[operator]
        return wait


@dataclass
class WolfCounts:
    done: int = 0
    failed: int = 0
    skipped: int = 0
    current: set[str] = field(default_factory=set)
    started_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class Fleetmates:
    """What a triager learns of the other wolves once the wolf is on the bus."""

    alive: Alive
    started_at: StartedAt
    # The fleet-wide comment budget in JetStream KV; None when no cap is configured.
    budget: CommentBudget | None
    # What a live wolf's heartbeat says it works on: its claim on any other task of its
    # is abandoned (it put the task back). None: every live wolf's claim counts.
    working_on: WorkingOn | None = None
    # Writes this wolf's record (naming the task it just took) now, not at the next beat:
    # the triager calls it before claiming, so no fleetmate reads the claim as abandoned.
    announce: Announce | None = None


# Builds the wolf's triager from what the bus tells of its fleetmates.
MakeTriager = Callable[[Fleetmates], Triager]


class Wolf:
    def __init__(
        self,
        name: str,
        tier: str,
        bus: BusConfig,
        make_triager: MakeTriager,
        model: str,
        concurrency: int = 2,
        comments_per_hour: int | None = None,
        signer: NostrKey | None = None,
    ) -> None:
        # Set: the cap is fleet-wide, counted in JetStream KV (replaces the triager's own).
        self.comments_per_hour = comments_per_hour
        self.name = name
        self.tier = tier
        self.bus = bus
        self._make_triager = make_triager
        self.model = model
        self.concurrency = concurrency
        self.counts = WolfCounts()
        # The wolf's own Nostr key: every result it reports is signed, and the bot refuses
        # one that is not signed by the key the fleet registered for this wolf.
        self.signer = signer
        self._stop = asyncio.Event()
        self._nc: Client | None = None
        # When this wolf last told the bot, per burn, that its model chain fails: once per
        # retry period is enough, however many tasks fail meanwhile.
        self._stall_told: dict[str, float] = {}

    def record(self) -> AgentRecord:
        c = self.counts
        return AgentRecord(
            name=self.name,
            tier=self.tier,
            model=self.model,
            current_task=", ".join(sorted(c.current)) or None,
            done=c.done,
            failed=c.failed,
            skipped=c.skipped,
            started_at=c.started_at,
            heartbeat_at=utcnow(),
        )

    def stop(self) -> None:
        self._stop.set()

    async def _wait_for_bus(self, js: JetStreamContext) -> bool:
        """Until the bot has made this tier's consumer and the buckets; False if stopped.

        A wolf may only use what the bot made (its NATS user cannot create anything), so
        a wolf started before the bot, or for a tier no burn has used yet, waits here.
        """
        backoff = Backoff(0.2, 5.0, jitter=0.2)
        attempt = 0
        while not self._stop.is_set():
            try:
                if await tier_consumer_ready(js, self.tier):
                    await js.key_value(AGENTS_BUCKET)
                    if self.comments_per_hour is not None:
                        await js.key_value(LIMITS_BUCKET)
                    return True
                missing = f"consumer {tier_consumer(self.tier)}"
            except BucketNotFoundError:
                missing = "registry buckets"
            except Exception as exc:  # reconnecting, or a permission this user lacks
                missing = f"bus ({type(exc).__name__})"
            if attempt == 0:
                log.info("wolf_waiting_for_bot", extra=fields(wolf=self.name, missing=missing))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), backoff.delay(attempt))
            attempt += 1
        return False

    async def run(self) -> None:
        """Connect, wait for what the bot makes, build the triager, work until stopped."""
        refused: set[str] = set()

        async def on_error(exc: Exception) -> None:
            # The server refusing a wolf's own work means its NATS user was made for
            # another name or tier: say so once per subject, in words an operator can act on.
            detail = str(exc)
            if "permissions violation" in detail.lower() and detail not in refused:
                refused.add(detail)
                log.error(
                    "wolf_not_permitted",
                    extra=fields(
                        wolf=self.name,
                        tier=self.tier,
                        detail=detail,
                        hint="is this wolf's NATS user added under this name and tier?",
                    ),
                )

        # Its own inbox prefix: its NATS user may subscribe nowhere else.
        nc = await connect(
            self.bus,
            f"wolf-{self.name}",
            inbox_prefix=agent_inbox_prefix(self.name),
            on_error=on_error,
        )
        self._nc = nc
        js = fleet_jetstream(nc, self.bus)  # the hub's domain, from a leaf node
        if not await self._wait_for_bus(js):
            await nc.close()
            return
        registry = await Registry.open(js)
        budget = None
        if self.comments_per_hour is not None:
            budget = FleetBudget(await open_limits(js), self.comments_per_hour)

        async def started_at(name: str) -> datetime | None:
            record = await registry.get(name)
            return None if record is None else record.started_at

        async def working_on(name: str, task_id: str) -> bool:
            record = await registry.get(name)
            current = (record.current_task or "") if record is not None else ""
            return task_id in current.split(", ")

        async def announce(_task: Task) -> None:
            await registry.beat(self.record())

        triager = self._make_triager(
            Fleetmates(registry.alive, started_at, budget, working_on, announce)
        )
        heartbeat = Heartbeat(registry, self.record, self.bus.heartbeat_s)
        await heartbeat.start()
        sub = await pull_tasks(js, self.tier)
        log.info("wolf_started", extra=fields(wolf=self.name, tier=self.tier))
        slots = asyncio.Semaphore(self.concurrency)
        running: set[asyncio.Task[None]] = set()
        try:
            while not self._stop.is_set():
                await slots.acquire()
                if self._stop.is_set():
                    slots.release()
                    break
                try:
                    msgs = await sub.fetch(1, timeout=1.0)
                except TimeoutError:
                    slots.release()
                    continue
                except Exception as exc:  # reconnecting: the client retries forever
                    slots.release()
                    log.warning("fetch_failed", extra=fields(error=type(exc).__name__))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), 0.5)
                    continue
                for msg in msgs:
                    job = asyncio.create_task(self._handle(msg, js, triager))
                    running.add(job)
                    job.add_done_callback(running.discard)
                    job.add_done_callback(lambda _t: slots.release())
        finally:
            if running:
                await asyncio.gather(*running, return_exceptions=True)
            await heartbeat.stop()
            await nc.close()  # drain() can hang on pull subscriptions; work is done

    async def _handle(self, msg: Msg, js: JetStreamContext, triager: Triager) -> None:
        try:
            task = Task.from_bytes(msg.data)
        except BadMessage as exc:
            log.error("bad_task", extra=fields(error=str(exc)))
            await msg.term()
            return
        if task.task_id in self.counts.current:
            # JetStream gave us again a task we are still working on (our in-progress
            # signal came late: a busy loop). A second run would win the claim too (a
            # wolf's own claims are its own) and comment twice: the first run settles it.
            log.info("task_redelivered_while_running", extra=fields(task=task.task_id))
            with contextlib.suppress(Exception):
                await msg.nak(delay=self.bus.ack_wait_s)
            return
        self.counts.current.add(task.task_id)
        # Kept up until the ack, publishing the result included: a task redelivered while
        # its result is still going out would be reported (done) a second time.
        keepalive = asyncio.create_task(self._in_progress(msg))
        try:
            try:
                outcome = await triager.run(task)
            except Exception as exc:  # a bug: let JetStream redeliver it, keep the wolf alive
                log.exception("task_crashed", extra=fields(task=task.task_id))
                outcome = TaskOutcome(Disposition.RETRY, None, 5.0, type(exc).__name__)
            if outcome.models_failing is not None:
                await self._tell_models_failing(task, outcome)
            try:
                await self._settle(msg, task, outcome, js, keepalive)
            except Exception as exc:
                # The bus went away between the work and the ack: the task is redelivered
                # after ack_wait, finds its comment, and reports then. Nothing is lost.
                log.warning(
                    "settle_failed", extra=fields(task=task.task_id, error=type(exc).__name__)
                )
        finally:
            keepalive.cancel()
            self.counts.current.discard(task.task_id)

    async def _tell_models_failing(self, task: Task, outcome: TaskOutcome) -> None:
        """Tell the bot that every model provider failed, so the burn's room learns why
        work stalls. At most once per retry period and burn; best effort: a status that
        does not go out is sent at the next failure, and the task is retried regardless."""
        now = time.monotonic()
        last = self._stall_told.get(task.burn_id)
        if last is not None and now - last < max(outcome.retry_after_s, 1.0):
            return
        nc = self._nc
        if nc is None:
            return
        try:
            status = WolfStatus.models_failing(
                self.name, task.burn_id, outcome.models_failing or {}, outcome.retry_after_s
            )
            if self.signer is not None:
                status = sign_status(status, self.signer)
            await publish_status(nc, status)
        except Exception as exc:  # reconnecting, or a malformed status: the work goes on
            log.warning("status_not_sent", extra=fields(wolf=self.name, error=str(exc)))
            return
        self._stall_told[task.burn_id] = now
        log.warning(
            "models_failing",
            extra=fields(wolf=self.name, burn=task.burn_id, providers=status.providers),
        )

    async def _in_progress(self, msg: Msg) -> None:
        """Keep JetStream from redelivering a task we are still working on."""
        every = max(self.bus.ack_wait_s / 3, 0.2)
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def _settle(
        self,
        msg: Msg,
        task: Task,
        outcome: TaskOutcome,
        js: JetStreamContext,
        keepalive: asyncio.Task[None] | None = None,
    ) -> None:
        """`keepalive` stops just before the nak, term or ack, which it must not follow."""
        result = outcome.result
        if outcome.disposition is Disposition.RETRY:
            delivered = msg.metadata.num_delivered or 1
            if delivered < self.bus.max_deliver:
                log.info(
                    "task_retry",
                    extra=fields(
                        task=task.task_id, reason=outcome.reason, delay_s=outcome.retry_after_s
                    ),
                )
                if keepalive is not None:
                    keepalive.cancel()
                await msg.nak(delay=outcome.retry_after_s)
                return
            result = Result.for_task(
                task,
                Outcome.FAILED,
                Reason.GAVE_UP,
                self.name,
                f"gave up after {delivered} tries: {outcome.reason}",
            )
        if result is not None:
            if self.signer is not None:
                result = sign_result(result, self.signer)
            await publish_result(js, result)
            self._count(result)
        if keepalive is not None:
            keepalive.cancel()
        if outcome.disposition is Disposition.TERM:
            await msg.term()
        else:
            await msg.ack_sync()
        log.info(
            "task_settled",
            extra=fields(
                task=task.task_id,
                outcome=result.outcome if result else None,
                reason=result.reason if result else None,
                provider=result.provider if result else None,
            ),
        )

    def _count(self, result: Result) -> None:
        # A redelivered task whose comment already exists is reported done (the bot needs the
        # result), but this wolf did no triage: its own count says skipped, so the fleet's
        # counts add up to the work done, once per issue.
        if result.outcome is Outcome.DONE and result.reason is not Reason.ALREADY_TRIAGED:
            self.counts.done += 1
        elif result.outcome is Outcome.SKIPPED:
            self.counts.skipped += 1
        else:
            self.counts.failed += 1


def build_wolf(cfg: object, name: str, tier: str) -> tuple[Wolf, GiteaClient, FallbackChain]:
    from fleetcore.config import FleetConfig
    from fleetcore.forge.client import client_from_config
    from fleetcore.projects import project_store
    from fleetcore.soul import SoulRefusedError, load_for_agent

    assert isinstance(cfg, FleetConfig)
    if cfg.bus is None or cfg.gitea is None or not cfg.fallback_providers:
        missing = [
            k
            for k, v in (
                ("bus", cfg.bus),
                ("gitea", cfg.gitea),
                ("fallback_providers", cfg.fallback_providers),
            )
            if not v
        ]
        raise SystemExit(f"fleet wolf needs {', '.join(missing)} in the config")
    try:
        soul = load_for_agent(cfg.soul, cfg.state_dir)
    except SoulRefusedError as exc:
        raise SystemExit(f"fleet wolf {name}: {exc}") from None
    chain = FallbackChain.from_config(cfg.model, cfg.fallback_providers, cfg.chain, soul.text)
    gitea = client_from_config(cfg)
    projects = project_store(cfg)
    wolves = cfg.wolves

    async def complete(messages: list[dict[str, str]], sensitive: bool) -> Completion:
        return await chain.complete(
            messages, sensitive=sensitive, deadline_s=wolves.model_deadline_s, max_tokens=700
        )

    private: dict[str, bool] = {}

    async def sensitive(task: Task) -> bool:
        project = projects.get(task.project)
        if project is not None and project.sensitive:
            return True
        if task.repo not in private:
            owner, repo = task.repo.split("/", 1)
            private[task.repo] = (await gitea.get_repo(owner, repo)).private
        return private[task.repo]

    stale_after_s = cfg.bus.heartbeat_ttl_s

    def triager(mates: Fleetmates) -> Triager:
        # The budget is the fleet-wide one the wolf opens in NATS KV once connected.
        return Triager(
            name,
            gitea,
            complete,
            mates.alive,
            mates.budget,
            sensitive,
            stale_after_s=stale_after_s,
            started_at=mates.started_at,
            working_on=mates.working_on,
            announce=mates.announce,
            models_retry_s=wolves.models_retry_s,
        )

    signer = None
    if wolves.nostr_key_file is not None:
        from fleetcore.identity.keystore import KeystoreError, load_nostr

        try:
            signer = load_nostr(wolves.nostr_key_file.expanduser())
        except KeystoreError as exc:
            raise SystemExit(f"fleet wolf {name}: {exc}") from None
    else:
        log.warning("wolf_unsigned", extra=fields(wolf=name, fix="fleet agent add " + name))
    primary = cfg.model.default if cfg.model else cfg.fallback_providers[0].model
    wolf = Wolf(
        name,
        tier,
        cfg.bus,
        triager,
        primary,
        wolves.concurrency,
        comments_per_hour=wolves.comments_per_hour,
        signer=signer,
    )
    return wolf, gitea, chain


async def _main(cfg: object, name: str, tier: str) -> int:
    wolf, gitea, chain = build_wolf(cfg, name, tier)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, wolf.stop)
    try:
        await wolf.run()
    finally:
        await gitea.aclose()
        await chain.aclose()
    return 0


def wolf_main(cfg: object, name: str, tier: str) -> int:
    from fleetcore.log import setup

    setup(getattr(cfg, "log_level", "info"))
    return asyncio.run(_main(cfg, name, tier))
