"""The one way out: every message the bot posts to a room goes through `Sender`.

Replies, crisis replies, burn progress and digests, webhook notices, identity and device
notices, operator alerts: one path, so three promises are kept in one place.

- Transaction ids are written to the bot's state database before the send. A message the
  homeserver never confirmed is sent again on the next start with the same id, and the
  homeserver answers a repeated id with the first event: a crash neither loses a message
  nor posts it twice. A caller repeating an id that was confirmed gets the stored event id.
- Rate limits are ours, not nio's (it is configured to hand a 429 back): a 429 waits the
  homeserver's `retry_after_ms` (or the fleet's backoff when it gives none) and tries again,
  holding only that room's turn. A room that is rate-limited never delays another room.
- Order is per room: a room's messages leave one at a time, in the order they were asked
  for, except that a crisis reply goes ahead of the room's messages still waiting.

This is the only module that calls nio's `room_send` (tests/design/ checks it).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol, TypeVar

from nio import AsyncClient, ErrorResponse, OlmUnverifiedDeviceError, RoomSendResponse

from bot.matrix.state import BotState
from bot.pipeline.message import Reply
from fleetcore.log import fields
from fleetcore.metrics import Metrics
from fleetcore.retry import Backoff

log = logging.getLogger(__name__)

# When a 429 carries no retry_after_ms: 1 s, doubling up to a minute.
RATE_LIMIT_BACKOFF = Backoff(1.0, 60.0)
# Undecided devices appearing during one send: decide them and try again, this often.
UNDECIDED_TRIES = 3

R = TypeVar("R")


class RoomKeys(Protocol):
    """What the sender needs from the crypto side (`MatrixShell`): who may read a room."""

    async def prepare(self, room_id: str) -> None:
        """Decide every device of the room and share its Megolm session before a send."""

    async def decide(self) -> None:
        """Decide devices nio refused to encrypt for (`OlmUnverifiedDeviceError`)."""

    def one_off(self, room_id: str, writer: str) -> AbstractAsyncContextManager[None]:
        """A Megolm session for one message that `writer`'s devices can read, whatever
        their trust (the crisis reply); the room's next message starts a fresh one."""


def rate_limited(resp: object) -> int | None:
    """The wait a 429 asks for, in ms (0: none given); None when it is not a 429."""
    if isinstance(resp, ErrorResponse) and resp.status_code in ("M_LIMIT_EXCEEDED", "429"):
        return int(resp.retry_after_ms or 0)
    return None


async def patiently(
    call: Callable[[], Awaitable[R]], what: str, backoff: Backoff = RATE_LIMIT_BACKOFF
) -> R:
    """Run a homeserver call again while it answers 429 (joins, room creation...)."""
    failures = 0
    while True:
        resp = await call()
        wait_ms = rate_limited(resp)
        if wait_ms is None:
            return resp
        wait_s = wait_ms / 1000 if wait_ms else backoff.delay(failures)
        failures += 1
        log.info("rate_limited", extra=fields(call=what, retry_in_s=round(wait_s, 3)))
        await asyncio.sleep(wait_s)


class _Lane:
    """One room's turn to send: first come, first served, crisis replies first."""

    def __init__(self) -> None:
        self._busy = False
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @asynccontextmanager
    async def turn(self, urgent: bool) -> AsyncIterator[None]:
        if self._busy or self._waiting:
            ticket: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiting, (0 if urgent else 1, next(self._order), ticket))
            try:
                await ticket
            except asyncio.CancelledError:
                if ticket.done() and not ticket.cancelled():
                    self._next()  # the turn was ours already: pass it on
                raise
        self._busy = True
        try:
            yield
        finally:
            self._next()

    def _next(self) -> None:
        while self._waiting:
            _, _, ticket = heapq.heappop(self._waiting)
            if not ticket.done():
                ticket.set_result(None)  # handed over: the lane stays busy
                return
        self._busy = False


class Sender:
    def __init__(
        self,
        client: AsyncClient,
        outbox: BotState,
        keys: RoomKeys,
        metrics: Metrics,
        backoff: Backoff = RATE_LIMIT_BACKOFF,
    ) -> None:
        self._client = client
        self._outbox = outbox
        self._keys = keys
        self._metrics = metrics
        self._backoff = backoff
        self._lanes: dict[str, _Lane] = {}

    async def reply(self, reply: Reply, txn_id: str | None = None) -> str | None:
        """A reply as an `m.notice`; one with `reach_user` is readable by that user."""
        return await self.send(reply.room_id, reply_content(reply), txn_id, reach=reply.reach_user)

    async def text(self, room_id: str, text: str, txn_id: str | None = None) -> str | None:
        return await self.reply(Reply(room_id, text), txn_id)

    async def edit(
        self, room_id: str, event_id: str, text: str, txn_id: str | None = None
    ) -> str | None:
        content = {
            "msgtype": "m.notice",
            "body": f"* {text}",
            "m.new_content": {"msgtype": "m.notice", "body": text},
            "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
        }
        return await self.send(room_id, content, txn_id)

    async def send(
        self,
        room_id: str,
        content: dict[str, Any],
        txn_id: str | None = None,
        *,
        reach: str | None = None,
    ) -> str | None:
        """Post `content` once; the event id, or None when the homeserver refused it.

        `reach`: a user whose devices must be able to read this one message even when the
        trust policy does not trust them (`RoomKeys.one_off`). Without a `txn_id` one is
        made up, and stored like any other.
        """
        txn = txn_id or f"hermes-out-{uuid.uuid4().hex}"
        sent = self._outbox.stage_send(txn, room_id, content, reach)
        if sent is not None:
            return sent
        async with self._lane(room_id).turn(urgent=reach is not None):
            return await self._deliver(room_id, content, txn, reach)

    async def resend_unsent(self) -> None:
        """Send what an earlier run staged but never saw accepted: same ids, rooms in turn."""
        rooms: dict[str, list[tuple[str, dict[str, Any], str | None]]] = {}
        for txn, room_id, content, reach in self._outbox.unsent():
            rooms.setdefault(room_id, []).append((txn, content, reach))
        if rooms:
            log.info("outbox_resumed", extra=fields(count=sum(map(len, rooms.values()))))
        await asyncio.gather(*(self._resend_room(r, items) for r, items in rooms.items()))

    async def _resend_room(
        self, room_id: str, items: list[tuple[str, dict[str, Any], str | None]]
    ) -> None:
        async with self._lane(room_id).turn(urgent=False):
            for txn, content, reach in items:
                try:
                    await self._deliver(room_id, content, txn, reach)
                except Exception as exc:  # a room we left, say: drop it, keep the others
                    log.warning(
                        "outbox_resend_failed",
                        extra=fields(room=room_id, error=f"{type(exc).__name__}: {exc}"),
                    )
                    self._outbox.send_dropped(txn)

    def _lane(self, room_id: str) -> _Lane:
        return self._lanes.setdefault(room_id, _Lane())

    async def _deliver(
        self, room_id: str, content: dict[str, Any], txn: str, reach: str | None
    ) -> str | None:
        """Send until accepted or refused; the caller holds the room's turn."""
        limited = undecided = 0
        while True:
            try:
                await self._keys.prepare(room_id)
                if reach is None:
                    resp = await self._room_send(room_id, content, txn)
                else:
                    async with self._keys.one_off(room_id, reach):
                        resp = await self._room_send(room_id, content, txn)
            except OlmUnverifiedDeviceError:
                undecided += 1
                if undecided >= UNDECIDED_TRIES:
                    log.error("send_gave_up", extra=fields(room=room_id))
                    self._outbox.send_dropped(txn)
                    return None
                await self._keys.decide()
                continue
            if isinstance(resp, RoomSendResponse):
                self._outbox.send_done(txn, str(resp.event_id))
                return str(resp.event_id)
            wait_ms = rate_limited(resp)
            if wait_ms is None:
                log.warning("send_failed", extra=fields(room=room_id, error=str(resp)))
                self._outbox.send_dropped(txn)
                return None
            # Outside the crypto lock (the one-off session is closed): other rooms go on.
            wait_s = wait_ms / 1000 if wait_ms else self._backoff.delay(limited)
            limited += 1
            log.info(
                "send_rate_limited",
                extra=fields(room=room_id, retry_after_ms=wait_ms, retry_in_s=round(wait_s, 3)),
            )
            self._metrics.record("matrix.send_rate_limited_s", wait_s)
            await asyncio.sleep(wait_s)

    async def _room_send(self, room_id: str, content: dict[str, Any], txn: str) -> object:
        return await self._client.room_send(room_id, "m.room.message", content, tx_id=txn)


def reply_content(reply: Reply) -> dict[str, Any]:
    """A reply as `m.room.message` content: an `m.notice`, threaded to what it answers."""
    content: dict[str, Any] = {"msgtype": "m.notice", "body": reply.text}
    if reply.html is not None:
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = reply.html
    if reply.in_reply_to:
        content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply.in_reply_to}}
    return content
