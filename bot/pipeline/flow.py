"""The pipeline: one message through every stage, in order (see the package's docstring).

The sync loop hands each message to `submit`, which never waits. The guard starts at once,
in a task of its own, so a crisis reply goes out whatever else is running; everything after
the guard runs on the room's ordered worker (`rooms.RoomWorkers`), so one slow model answer
holds only its own room.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from bot.commands import CommandContext, CommandRegistry
from bot.converse import Conversation
from bot.pipeline.access import authorize, refusal
from bot.pipeline.execute import execute
from bot.pipeline.guard import CrisisGuard, GuardResult
from bot.pipeline.message import Incoming, Reply, Undecryptable
from bot.pipeline.parse import BadCommand, NotACommand, looks_like_command, parse
from bot.pipeline.report import Reporter
from bot.pipeline.rooms import RoomWorkers
from bot.services import BotServices
from fleetcore.log import fields
from fleetcore.metrics import Metrics

log = logging.getLogger(__name__)

UNDECRYPTABLE_NOTICE = (
    "I couldn't decrypt your message: my device has no key for it yet. I've asked your "
    "devices to share it; if this keeps happening, verify my device in Element or resend."
)


class Pipeline:
    def __init__(
        self,
        guard: CrisisGuard,
        operators: frozenset[str],
        registry: CommandRegistry,
        services: BotServices,
        reporter: Reporter,
        rooms: RoomWorkers,
        conversation: Conversation | None,
        on_done: Callable[[str], None],
        metrics: Metrics,
    ) -> None:
        self.guard = guard
        self.operators = operators
        self.registry = registry
        self.services = services
        self.reporter = reporter
        self.rooms = rooms
        # With a model chain configured, non-command chat gets a guarded answer.
        self.conversation = conversation
        # Called with an event id once the pipeline is through with it (handled for good).
        self._done = on_done
        self._metrics = metrics

    def submit(self, msg: Incoming) -> None:
        """Take one message from the sync loop; returns at once."""
        t0 = time.perf_counter()
        guarded = asyncio.create_task(self._guard(msg, t0))
        self.rooms.submit(msg.room_id, msg.event_id, lambda: self._route(msg, guarded, t0))

    def submit_undecryptable(self, event: Undecryptable) -> None:
        self.rooms.submit(event.room_id, event.event_id, lambda: self.handle_undecryptable(event))

    async def handle(self, msg: Incoming) -> None:
        """The whole path for one message, awaited: what `submit` does, for direct callers."""
        t0 = time.perf_counter()
        await self._route(msg, asyncio.create_task(self._guard(msg, t0)), t0)

    async def _guard(self, msg: Incoming, t0: float) -> GuardResult:
        """Stage 2, never queued behind other work: a crisis is answered from here."""
        guarded = await self.guard.check(msg)
        for reply in guarded.replies:  # the crisis or hold reply, or a concern check-in
            if not guarded.passed:
                self._mark(t0)
            await self.reporter.reply(reply)
        if guarded.alert is not None:
            await self.reporter.alert_operators(guarded.alert, msg.room_id, msg.event_id)
        return guarded

    async def _route(
        self, msg: Incoming, guarded_task: asyncio.Task[GuardResult], t0: float
    ) -> None:
        try:
            guarded = await guarded_task
            # An edit is screened (above) but never run again as a command or chat.
            if guarded.passed and not msg.is_edit:
                await self._after_guard(msg, guarded, t0)
        except asyncio.CancelledError:
            raise  # drained at shutdown: not done, the next start takes it up again
        except Exception:
            self._done(msg.event_id)
            raise
        self._done(msg.event_id)

    async def _after_guard(self, msg: Incoming, guarded: GuardResult, t0: float) -> None:
        decision = authorize(msg, self.operators)
        if not decision.allowed:
            log.info(
                "refused",
                extra=fields(event_id=msg.event_id, sender=msg.sender, why=decision.access.value),
            )
            if looks_like_command(msg.body):
                self._mark(t0)
                await self.reporter.reply(Reply(msg.room_id, refusal(decision), msg.event_id))
            return

        parsed = parse(msg.body)
        if isinstance(parsed, NotACommand):
            if self.conversation is not None and self._addressed(msg):
                text = await self.conversation.reply(msg, guarded.verdict)
                self._mark(t0)
                await self.reporter.reply(Reply(msg.room_id, text, msg.event_id))
            return
        if isinstance(parsed, BadCommand):
            self._mark(t0)
            text = f"{parsed.reason}. Type `!help` for the commands."
            await self.reporter.reply(Reply(msg.room_id, text, msg.event_id))
            return

        log.info(
            "command",
            extra=fields(event_id=msg.event_id, room=msg.room_id, command=parsed.name),
        )
        text = await execute(CommandContext(msg, parsed, self.services), self.registry)
        self._mark(t0)
        if text:  # empty: the command posted its own message (a burn's progress message)
            await self.reporter.reply(Reply(msg.room_id, text, msg.event_id))

    def _addressed(self, msg: Incoming) -> bool:
        """Chat is for the bot in a direct room, or when it is mentioned by name."""
        if msg.is_direct:
            return True
        own = self.services.matrix.nio.user_id
        if own in msg.mentions:  # mentioned, or a reply to one of the bot's messages
            return True
        return own in msg.body or own.split(":")[0][1:] in msg.body.lower()

    async def handle_undecryptable(self, event: Undecryptable) -> None:
        log.info(
            "undecryptable",
            extra=fields(event_id=event.event_id, room=event.room_id, sender=event.sender),
        )
        await self.reporter.reply(Reply(event.room_id, UNDECRYPTABLE_NOTICE, event.event_id))

    def _mark(self, t0: float) -> None:
        self._metrics.record("bot.processing_s", time.perf_counter() - t0)
