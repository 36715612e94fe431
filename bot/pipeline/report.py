"""Stage 6: the only way the pipeline speaks, so every reply is an encrypted `m.notice`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.pipeline.message import Reply

Send = Callable[[Reply], Awaitable[str | None]]


class Reporter:
    def __init__(self, send: Send, alerts_room: str | None) -> None:
        self._send = send
        self._alerts_room = alerts_room

    async def reply(self, reply: Reply) -> str | None:
        return await self._send(reply)

    async def alert_operators(self, text: str, fallback_room: str) -> str | None:
        """Operator alerts go to the operators' room; without one, to the room it came from."""
        return await self._send(Reply(self._alerts_room or fallback_room, text))
