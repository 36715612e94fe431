"""Conversation: operator chat that is not a command goes to a model, guarded both ways.

The crisis guard has already screened the input. The output guard checks the model's reply
before anyone sees it: a reply that gives methods, validates despair, or lacks a crisis line
where one is needed is replaced by the protocol message. Conversations only reach models
that passed `fleet safety-test`, and direct messages count as sensitive (never sent to a
provider that logs prompts).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from bot.pipeline.message import Incoming
from fleetcore.log import fields
from fleetcore.safety import Level, Verdict
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
        crisis_context = verdict is not None and verdict.level is not Level.none
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
            crisis_context,
            self.safety,
            locale=self.safety.locale_for(msg.sender),
        )
        log.info(
            "conversation_reply",
            extra=fields(
                event_id=msg.event_id,
                provider=answer.provider,
                model=answer.model,
                replaced=guarded != answer.text,
            ),
        )
        return guarded
