"""The one path every message takes, in order:

decrypt -> crisis guard -> access control -> parse -> execute -> report

Each stage is a module of its own in this package. Only the guard may read a body before
the guard has passed it; no stage logs a body.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING

from bot.commands import CommandContext, CommandRegistry
from bot.pipeline.access import authorize, refusal
from bot.pipeline.execute import execute
from bot.pipeline.guard import CrisisGuard
from bot.pipeline.message import Incoming, Reply, Undecryptable
from bot.pipeline.parse import BadCommand, NotACommand, looks_like_command, parse
from bot.pipeline.report import Reporter
from bot.services import BotServices
from fleetcore.log import fields

if TYPE_CHECKING:
    from bot.converse import Conversation

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
    ) -> None:
        self.guard = guard
        self.operators = operators
        self.registry = registry
        self.services = services
        self.reporter = reporter
        # Set when a model chain is configured: non-command chat gets a guarded answer.
        self.conversation: Conversation | None = None
        # Bot's own processing time per message (received -> send call), for the benchmark.
        self.processing_s: deque[float] = deque(maxlen=10_000)

    async def handle(self, msg: Incoming) -> None:
        t0 = time.perf_counter()
        guarded = self.guard.check(msg)
        if not guarded.passed:
            for reply in guarded.replies:
                self._mark(t0)
                await self.reporter.reply(reply)
            if guarded.alert is not None:
                await self.reporter.alert_operators(guarded.alert, msg.room_id)
            return

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
        return own in msg.body or own.split(":")[0][1:] in msg.body.lower()

    async def handle_undecryptable(self, event: Undecryptable) -> None:
        log.info(
            "undecryptable",
            extra=fields(event_id=event.event_id, room=event.room_id, sender=event.sender),
        )
        await self.reporter.reply(Reply(event.room_id, UNDECRYPTABLE_NOTICE, event.event_id))

    def _mark(self, t0: float) -> None:
        self.processing_s.append(time.perf_counter() - t0)
