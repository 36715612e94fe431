"""Burns, the bot's side: queue tasks, read results, keep one progress message true.

Results are read with a durable consumer and stored (once per burn and issue) in SQLite.
A result is acknowledged to JetStream only after the digest message that reports it was
accepted by the homeserver; digests carry a transaction id stored before sending, so a
bot that restarts mid-burn neither loses a result nor reports one twice. The progress
message is edited (`m.replace`) at most every `edit_interval_s`; digests go out at most
every `digest_interval_s` and once at the end: a handful of room messages per burn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from bot.burn.progress import BurnProgress, DigestClock, ResultLine
from bot.burn.stall import Stall
from bot.burn.store import BurnRow, BurnStore
from fleetcore.bus.config import BusConfig
from fleetcore.bus.connect import connect
from fleetcore.bus.messages import (
    BadMessage,
    Result,
    Task,
    check_result_signature,
    publish_task,
)
from fleetcore.bus.registry import Registry
from fleetcore.bus.status import WolfStatus, check_status_signature
from fleetcore.bus.streams import (
    ensure_streams,
    ensure_tier_consumer,
    pull_results,
    queue_depth,
    withdraw_burn,
)
from fleetcore.bus.subjects import STATUS_SUBJECTS, result_sender, status_sender
from fleetcore.config.burn import BurnConfig
from fleetcore.errors import FleetError
from fleetcore.forge.client import GiteaClient
from fleetcore.log import fields
from fleetcore.projects import Project

log = logging.getLogger("hermes.burn")

SendText = Callable[[str, str, str | None], Awaitable[str | None]]  # room, text, txn
EditText = Callable[[str, str, str], Awaitable[str | None]]  # room, event, text
Alert = Callable[[str, str], Awaitable[object]]  # text, fallback room
# The npub an agent's results must be signed by (the fleet's agent registry); None: unknown.
NpubOf = Callable[[str], str | None]


@dataclass
class _Live:
    row: BurnRow
    progress: BurnProgress
    clock: DigestClock
    last_edit: float = 0.0
    # What the last edit showed (results, stopped): the rate and ETA alone don't re-edit.
    edited: tuple[int, bool] | None = None
    # Paused while every model provider fails: what the room was told, and is still to be.
    stall: Stall = field(init=False)

    def __post_init__(self) -> None:
        self.stall = Stall(self.row.id)


class BurnError(FleetError):
    """A burn could not start; the message is for the room."""


class BurnService:
    """Built whole by `open`: connected to the bus, streams made, unfinished burns resumed."""

    def __init__(
        self,
        nc: Client,
        registry: Registry,
        bus: BusConfig,
        cfg: BurnConfig,
        store: BurnStore,
        gitea: GiteaClient,
        gitea_url: str,
        send: SendText,
        edit: EditText,
        alert: Alert,
        clock: Callable[[], float] = time.time,
        *,
        npub_of: NpubOf,
    ) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.registry = registry
        self.bus = bus
        self.cfg = cfg
        self.store = store
        self.gitea = gitea
        self.gitea_url = gitea_url.rstrip("/")
        self._send = send
        self._edit = edit
        self._alert = alert
        self.clock = clock
        self._npub_of = npub_of
        self._live: dict[str, _Live] = {}
        self._held: dict[tuple[str, int], list[Msg]] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    # -- lifecycle ---------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        bus: BusConfig,
        cfg: BurnConfig,
        store: BurnStore,
        gitea: GiteaClient,
        gitea_url: str,
        send: SendText,
        edit: EditText,
        alert: Alert,
        clock: Callable[[], float] = time.time,
        *,
        npub_of: NpubOf,
    ) -> BurnService:
        """Connect, make the streams, resume the burns an earlier run left running."""
        nc = await connect(bus, "bot")
        try:
            js = nc.jetstream()
            # Wolves cannot make their tier's consumer (their NATS users may not): the bot
            # makes it for the default tier, for burns it resumes, and at each new burn.
            tiers = {cfg.default_tier} | {row.tier for row in store.running()}
            await ensure_streams(js, bus, tiers=sorted(tiers))
            registry = await Registry.open(js)
            service = cls(
                nc,
                registry,
                bus,
                cfg,
                store,
                gitea,
                gitea_url,
                send,
                edit,
                alert,
                clock,
                npub_of=npub_of,
            )
            await service._resume()
        except BaseException:
            with contextlib.suppress(Exception):
                await nc.close()
            raise
        return service

    async def _resume(self) -> None:
        for row in self.store.running():
            progress = self.store.progress(row.id)
            assert progress is not None
            self._live[row.id] = _Live(
                row, progress, DigestClock(self.clock(), self.cfg.digest_interval_s)
            )
        await self._requeue_unfinished()
        sub = await pull_results(self.js)
        # Wolves' statuses: core NATS, so a bot that was away hears the next one instead.
        await self.nc.subscribe(STATUS_SUBJECTS, cb=self._on_status)
        self._tasks = [
            asyncio.create_task(self._read_results(sub), name="burn-results"),
            asyncio.create_task(self._report_loop(), name="burn-report"),
        ]
        self._wake.set()

    async def _requeue_unfinished(self) -> None:
        """Publish again every task of a running burn that has no result yet.

        A crash between recording a burn and publishing its last task would otherwise
        leave it waiting forever. Re-publishing is safe: within the duplicate window
        JetStream drops the copy, and after it a wolf finds the task's comment (or its
        live claim) and reports instead of commenting twice.
        """
        for burn_id, live in self._live.items():
            if live.row.stopped:
                continue
            row = live.row
            for number in self.store.issues(burn_id):
                if number not in live.progress.results:
                    await publish_task(
                        self.js, Task.new(burn_id, row.project, row.repo, number, row.tier)
                    )

    async def close(self) -> None:
        # A flag as well as cancel(): on Python 3.11, asyncio.wait_for can swallow a
        # cancellation that lands as its inner wait completes, and the loop would go on.
        self._closing = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self.nc.close()

    def connected(self) -> bool:
        return bool(self.nc.is_connected)

    # -- commands ----------------------------------------------------------------------

    async def begin(
        self,
        project: Project,
        room: str,
        *,
        limit: int | None,
        label: str | None,
        tier: str | None,
    ) -> str:
        """Queue a burn and post its progress message; returns the burn id."""
        running = self._running_in(room)
        if running is not None:
            raise BurnError(
                f"Burn {running.id} is still running here: `!burn status` shows "
                "it, `!burn stop` withdraws what is still queued."
            )
        limit = limit or self.cfg.default_limit
        if limit > self.cfg.max_limit:
            raise BurnError(f"--limit is at most {self.cfg.max_limit}.")
        tier = tier or self.cfg.default_tier
        owner, repo = project.owner_repo
        numbers: list[int] = []
        async for issue in self.gitea.iter_issues(
            owner, repo, state="open", labels=[label] if label else None
        ):
            names = issue.label_names
            if any(n.startswith("assigned:") for n in names) or "triaged" in names:
                continue
            numbers.append(issue.number)
            if len(numbers) >= limit:
                break
        if not numbers:
            what = f" labelled {label}" if label else ""
            raise BurnError(f"No open, unclaimed, untriaged issues{what} in {project.repo}.")
        burn_id = "b" + secrets.token_hex(4)
        Task.new(burn_id, project.name, project.repo, 1, tier)  # validates names early
        row = BurnRow(
            burn_id,
            project.name,
            room,
            f"{self.gitea_url}/{project.repo}",
            tier,
            len(numbers),
            self.clock(),
            None,
            False,
            0,
            None,
        )
        self.store.create(row, numbers)
        live = _Live(
            row,
            BurnProgress(burn_id, project.name, row.repo_url, len(numbers), row.started),
            DigestClock(self.clock(), self.cfg.digest_interval_s),
        )
        self._live[burn_id] = live
        event = await self._send(room, live.progress.render(self.clock()), f"{burn_id}-progress")
        if event is not None:
            self.store.set_progress_event(burn_id, event)
            live.row = self.store.burn(burn_id) or row
        await ensure_tier_consumer(self.js, self.bus, tier)
        for number in numbers:
            await publish_task(self.js, Task.new(burn_id, project.name, project.repo, number, tier))
        log.info(
            "burn_started",
            extra=fields(burn=burn_id, project=project.name, tasks=len(numbers), tier=tier),
        )
        return burn_id

    async def stop(self, room: str) -> str:
        row = self._running_in(room)
        if row is None:
            return "No burn is running in this room."
        withdrawn = await withdraw_burn(self.js, row.id)
        self.store.mark_stopped(row.id, withdrawn)
        live = self._live[row.id]
        live.progress.stopped = True
        live.progress.withdrawn += withdrawn
        self._wake.set()
        return (
            f"Stopped burn {row.id}: withdrew {withdrawn} queued task(s); tasks already "
            "with a wolf finish and are reported."
        )

    def status(self, room: str) -> str:
        row = self._running_in(room) or self.store.latest_in_room(room)
        if row is None:
            return "No burn has run in this room."
        progress = (
            self._live[row.id].progress if row.id in self._live else self.store.progress(row.id)
        )
        assert progress is not None
        return progress.render(self.clock())

    def _running_in(self, room: str) -> BurnRow | None:
        for live in self._live.values():
            if live.row.room == room and not live.progress.complete:
                return live.row
        return None

    # -- status ------------------------------------------------------------------------

    async def agents_text(self) -> str:
        records = await self.registry.list()
        if not records:
            return "agents: none alive"
        now = time.time()
        lines = [f"agents ({len(records)}):"]
        for r in sorted(records, key=lambda r: r.name):
            age = now - r.heartbeat_at.timestamp()
            lines.append(
                f"- {r.name} [{r.tier}] heartbeat {age:.0f}s ago, model {r.model}, "
                f"task {r.current_task or 'idle'}, done {r.done} failed {r.failed} "
                f"skipped {r.skipped}"
            )
        return "\n".join(lines)

    async def status_text(self) -> str:
        lines = [await self.agents_text()]
        tiers = sorted({self.cfg.default_tier} | {lv.row.tier for lv in self._live.values()})
        depths = []
        for tier in tiers:
            try:
                depths.append(f"{tier} {await queue_depth(self.js, tier)}")
            except Exception as exc:  # status must not fail because NATS is away
                depths.append(f"{tier} ? ({type(exc).__name__})")
        lines.append("queue: " + ", ".join(depths))
        running = [lv for lv in self._live.values() if not lv.progress.complete]
        if running:
            lines.append("burns:")
            for lv in running:
                p = lv.progress
                lines.append(f"- {p.burn_id} on {p.project}: {p.finished}/{p.expected}")
        else:
            lines.append("burns: none running")
        return "\n".join(lines)

    async def health(self) -> tuple[bool, str]:
        if not self.connected():
            return False, "disconnected (reconnecting)"
        url = self.nc.connected_url
        return True, f"connected to {url.netloc if url else '?'}"

    # -- results -----------------------------------------------------------------------

    async def _read_results(self, sub: JetStreamContext.PullSubscription) -> None:
        while not self._closing:
            try:
                msgs = await sub.fetch(100, timeout=1.0)
            except TimeoutError:
                continue
            except Exception as exc:  # NATS reconnecting: the client retries forever
                log.warning("results_fetch_failed", extra=fields(error=type(exc).__name__))
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                await self._on_result(msg)
            self._wake.set()

    async def _on_result(self, msg: Msg) -> None:
        try:
            result = Result.from_bytes(msg.data)
        except BadMessage as exc:
            log.error("bad_result", extra=fields(error=str(exc)))
            await msg.term()
            return
        sender = result_sender(msg.subject)
        if sender is not None and sender != result.wolf:
            # Only the wolf's own NATS user may publish under its name: a result naming
            # another wolf is forged (or a bug), and is not counted.
            log.error("result_forged", extra=fields(subject=msg.subject, wolf=result.wolf))
            await msg.term()
            return
        problem = check_result_signature(msg.data, self._npub_of(result.wolf))
        if problem is not None:
            # Only what the wolf's registered Nostr key signed is reported: an unsigned
            # result (an older wolf, or one run without its identity) or a tampered one is
            # refused and never counted.
            log.error(
                "result_refused",
                extra=fields(
                    wolf=result.wolf, task=result.task_id, npub=result.npub, problem=problem
                ),
            )
            await msg.term()
            return
        live = self._live.get(result.burn_id)
        if live is None:
            # Not a running burn of ours (finished, or another bot's): nothing to report.
            await msg.ack()
            return
        line = ResultLine(
            result.issue_number,
            result.outcome.value,
            result.detail,
            result.comment_url,
            result.wolf,
            result.provider or "",
        )
        fresh = self.store.add_result(result.burn_id, line)
        if fresh:
            live.progress.add(line)
            if live.stall.on_result(result):
                log.info("burn_resumed", extra=fields(burn=result.burn_id, wolf=result.wolf))
            if result.is_crisis:
                await self._alert(
                    f"Issue #{result.issue_number} in {result.repo} may be about someone's "
                    f"safety (level: {result.crisis_level}). It was not sent to any model "
                    "and is labelled needs-human. "
                    f"Please read it and reach out: {live.row.repo_url}/issues/"
                    f"{result.issue_number}",
                    live.row.room,
                )
        elif self.store.digested(result.burn_id, result.issue_number):
            await msg.ack()
            return
        self._held.setdefault((result.burn_id, result.issue_number), []).append(msg)

    async def _on_status(self, msg: Msg) -> None:
        """A wolf's state (fleetcore/bus/status.py): a pause to tell the burn's room of."""
        try:
            status = WolfStatus.from_bytes(msg.data)
        except BadMessage as exc:
            log.error("bad_status", extra=fields(error=str(exc)))
            return
        if status_sender(msg.subject) != status.wolf:
            log.error("status_forged", extra=fields(subject=msg.subject, wolf=status.wolf))
            return
        problem = check_status_signature(msg.data, self._npub_of(status.wolf))
        if problem is not None:
            log.error("status_refused", extra=fields(wolf=status.wolf, problem=problem))
            return
        live = self._live.get(status.burn_id)
        if live is None or live.progress.complete:
            return
        if live.stall.on_status(status):
            log.warning(
                "burn_paused",
                extra=fields(burn=status.burn_id, wolf=status.wolf, providers=status.providers),
            )
            self._wake.set()

    async def _report_loop(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.cfg.edit_interval_s)
            self._wake.clear()
            for burn_id in list(self._live):
                try:
                    await self._report(burn_id)
                except Exception:
                    log.exception("burn_report_failed", extra=fields(burn=burn_id))

    async def _report(self, burn_id: str) -> None:
        live = self._live[burn_id]
        p, row, now = live.progress, live.row, self.clock()
        # Digests a crashed run prepared but may not have sent: same txn, sent once.
        for txn, body in self.store.unsent_digests(burn_id):
            if await self._send(row.room, body, txn) is None:
                return
            self.store.digest_sent(txn)
        await self._ack_digested(burn_id)
        # A pause's notices, before the digest that reports the result which ended it.
        stall = live.stall
        while stall.pending:
            txn, text = stall.pending[0]
            if await self._send(row.room, text, txn) is None:
                return
            stall.pending.pop(0)
        final = p.complete
        if live.clock.due(now, bool(p.undigested), final):
            issues = [r.issue_number for r in p.undigested]
            digest = p.take_digest()
            if digest is not None:
                txn = f"{burn_id}-digest-{secrets.token_hex(6)}"
                self.store.prepare_digest(burn_id, txn, digest, issues)
                if await self._send(row.room, digest, txn) is not None:
                    self.store.digest_sent(txn)
                    live.clock.mark(now)
                    await self._ack_digested(burn_id)
        if row.progress_event is None:
            event = await self._send(row.room, p.render(now), f"{burn_id}-progress")
            if event is None:
                return
            self.store.set_progress_event(burn_id, event)
            live.row = row = self.store.burn(burn_id) or row
        due = now - live.last_edit >= self.cfg.edit_interval_s
        shown = (p.finished, p.stopped)
        if (final or due) and live.edited != shown:
            assert row.progress_event is not None
            if await self._edit(row.room, row.progress_event, p.render(now)) is not None:
                live.last_edit = now
                live.edited = shown
        if final and not self.store.unsent_digests(burn_id) and not p.undigested:
            self.store.mark_finished(burn_id)
            del self._live[burn_id]
            log.info("burn_finished", extra=fields(burn=burn_id, **p.counts()))

    async def _ack_digested(self, burn_id: str) -> None:
        for key in [k for k in self._held if k[0] == burn_id]:
            if self.store.digested(*key):
                for msg in self._held.pop(key):
                    with contextlib.suppress(Exception):
                        await msg.ack()
