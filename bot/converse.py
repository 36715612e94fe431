"""Conversation: operator chat that is not a command goes to a model, guarded both ways.

The crisis guard has already screened the input. The output guard checks the model's reply
before anyone sees it, in the context `outguard.reply_context(verdict)` gives: `crisis` when
the message was flagged (a failing reply is replaced by the protocol message, a passing one
without a line gets the lines); `at-risk` when it was not but the detector's learned
probability reached the context threshold (the reply's stance is judged as in a crisis,
because the detector misses some people at risk and a reply agreeing with despair hurts them
most; a failing reply is replaced by a supportive note, with no hold and no alert); and
`ordinary` (rules, and a stance head that acts only when sure, so ops replies pass).
Conversations only reach models that passed `fleet safety-test`, and direct messages count
as sensitive (never sent to a provider that logs prompts).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from bot.pipeline.message import Incoming
from fleetcore.log import fields
from fleetcore.safety import Verdict
from fleetcore.safety.outguard import reply_context
from fleetcore.safety.protocol import SafetyConfig, guard_model_reply

log = logging.getLogger(__name__)


class Answer(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def provider(self) -> str: ...

    @property
    def model(self) -> str: ...


# (messages, sensitive) -> answer; the fallback chain, restricted to models marked ready.
Complete = Callable[[list[dict[str, str]], bool], Awaitable[Answer]]


@dataclass
class Conversation:
    complete: Complete
    safety: SafetyConfig
    # Rooms whose project is `privacy: local-only` also count as sensitive.
    is_sensitive_room: Callable[[str], bool]

    async def reply(self, msg: Incoming, verdict: Verdict | None) -> str:
        context = reply_context(verdict)
        sensitive = msg.is_direct or self.is_sensitive_room(msg.room_id)
        try:
            answer = await self.complete([{"role": "user", "content": msg.body}], sensitive)
        except Exception as exc:
            log.warning(
                "conversation_failed",
                extra=fields(event_id=msg.event_id, error=type(exc).__name__),
            )
            return f"I can't reach a model right now ({type(exc).__name__}). Try again later."
        # The judge runs the encoder (a few ms of numpy): off the loop, like the crisis guard.
        guarded = await asyncio.to_thread(
            guard_model_reply,
            answer.text,
            context,
            self.safety,
            locale=self.safety.locale_for(msg.sender),
        )
        log.info(
            "conversation_reply",
            extra=fields(
                event_id=msg.event_id,
                provider=answer.provider,
                model=answer.model,
                context=context.value,
                replaced=guarded != answer.text,
            ),
        )
        return guarded
