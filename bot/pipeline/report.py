"""Stage 6: the only way the pipeline speaks, so every reply is an encrypted `m.notice`.

Each reply carries a transaction id derived from the event it answers: when a restart
handles a message again (it was queued but not finished), the homeserver answers the
repeated id with the first event instead of posting the reply twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from bot.pipeline.message import Reply

Send = Callable[[Reply, str | None], Awaitable[str | None]]


def txn_id(purpose: str, event_id: str) -> str:
    digest = hashlib.sha256(f"{purpose}\0{event_id}".encode()).hexdigest()[:32]
    return f"hermes-{purpose}-{digest}"


class Reporter:
    def __init__(self, send: Send, alerts_room: str | None) -> None:
        # `Sender.reply`: a reply with `reach_user` (the crisis reply) reaches that user's
        # devices whatever their trust; every other reply keeps the policy.
        self._send = send
        self._alerts_room = alerts_room

    async def reply(self, reply: Reply) -> str | None:
        txn = txn_id(reply.purpose, reply.in_reply_to) if reply.in_reply_to else None
        return await self._send(reply, txn)

    async def alert_operators(
        self, text: str, fallback_room: str, about: str | None = None
    ) -> str | None:
        """Operator alerts go to the operators' room; without one, to the room it came from.

        `about` is the event the alert is about, when there is one (one alert per event).
        """
        txn = txn_id("alert", about) if about else None
        return await self._send(Reply(self._alerts_room or fallback_room, text), txn)
