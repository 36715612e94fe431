"""`/webhooks/gitea`: forge events into project rooms, each exactly once, none lost.

A delivery is verified (HMAC of the raw body) before anything parses it, then written to
an SQLite outbox keyed by `X-Gitea-Delivery` before Gitea gets its 200: a repeated
delivery is a no-op, and a crash between the 200 and the room message loses nothing, the
outbox is flushed on the next start. The body's hash is a second key: a replayed body under
a fresh delivery id (anyone who captured one signed delivery can mint ids) is a duplicate
too. Two real events never share a body: each carries the issue's `updated_at` and ids.

The body is read with a cap and a deadline, and the server drops a connection that has not
finished its headers within the same deadline, so a stalled client holds no descriptor for
long.

A dispatcher drains the outbox in batches (one message per room per window), so a burst of
50 events becomes a handful of messages, and it keeps an event until the homeserver
accepted the message that reports it. Which events a message reports is written down
before its first send and never changes after: every try of it, on this run or after a
crash, reports the same events under the same transaction id, so the homeserver posts it
once (issue #14: an event accepted while a notice was in flight, read back with it after a
crash, made a new notice with a new id that reported the first one's events again).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from bot.forge.events import (
    ForgeEvent,
    Rejection,
    decode_delivery,
    render_notice,
)
from fleetcore.db import open_private_db
from fleetcore.log import fields
from fleetcore.projects import ProjectStore
from fleetcore.retry import Backoff

log = logging.getLogger("hermes.forge.webhooks")

MAX_BODY = 2 * 1024 * 1024
# Headers, then the whole body, each within this: Gitea posts a few KB at once.
READ_TIMEOUT_S = 10.0
MAX_EVENTS_PER_MESSAGE = 25
# After a refused send: 1 s, doubling up to a minute, until the homeserver takes it.
SEND_BACKOFF = Backoff(1.0, 60.0)
# (room_id, text, transaction id) -> accepted by the homeserver
Send = Callable[[str, str, str], Awaitable[bool]]


@dataclass
class Notice:
    """One message to a room: its transaction id and the deliveries it reports."""

    txn: str
    room: str
    items: list[tuple[str, ForgeEvent]]


class Outbox:
    """Deliveries accepted but not yet reported; the dedupe table is the same table."""

    def __init__(self, path: Path) -> None:
        self._db = open_private_db(
            path,
            "CREATE TABLE IF NOT EXISTS delivery (id TEXT PRIMARY KEY, room TEXT,"
            " event TEXT, received REAL, sent REAL);"
            # A table of its own rather than a column: outboxes written before it need no
            # migration (their old deliveries simply have no body hash on record).
            "CREATE TABLE IF NOT EXISTS body (sha256 TEXT PRIMARY KEY, delivery TEXT);"
            # The notice (its transaction id) each delivery is reported in, once sealed.
            "CREATE TABLE IF NOT EXISTS notice (delivery TEXT PRIMARY KEY, txn TEXT NOT NULL);"
            "CREATE INDEX IF NOT EXISTS notice_by_txn ON notice (txn);",
        )

    def accept(
        self,
        delivery_id: str,
        room_id: str | None,
        event: ForgeEvent | None,
        body_sha256: str | None = None,
    ) -> bool:
        """Record a delivery; False when its id or its body was seen before (a replay)."""
        sent = None if room_id and event else time.time()  # nothing to report: done already
        # One transaction: a body recorded without its delivery would turn Gitea's retry of
        # a delivery that got no 200 into a "duplicate", and lose it.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if body_sha256 is not None:
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO body VALUES (?, ?)", (body_sha256, delivery_id)
                )
                if cur.rowcount == 0:
                    self._db.execute("ROLLBACK")
                    return False
            cur = self._db.execute(
                "INSERT OR IGNORE INTO delivery VALUES (?, ?, ?, ?, ?)",
                (delivery_id, room_id, event.to_json() if event else None, time.time(), sent),
            )
            fresh = cur.rowcount == 1
            self._db.execute("COMMIT" if fresh else "ROLLBACK")
            return fresh
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def pending(self) -> dict[str, list[tuple[str, ForgeEvent]]]:
        rows = self._db.execute(
            "SELECT id, room, event FROM delivery WHERE sent IS NULL ORDER BY received, rowid"
        ).fetchall()
        out: dict[str, list[tuple[str, ForgeEvent]]] = {}
        for delivery_id, room, event in rows:
            out.setdefault(room, []).append((delivery_id, ForgeEvent.from_json(event)))
        return out

    def seal(self, max_events: int) -> None:
        """Put each pending delivery not in a notice yet into one: per room, in the order
        received, at most `max_events` a notice. One transaction, before any send: a notice
        is never sent before its deliveries are on record as its own."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            rows = self._db.execute(
                "SELECT id, room FROM delivery WHERE sent IS NULL"
                " AND id NOT IN (SELECT delivery FROM notice) ORDER BY received, rowid"
            ).fetchall()
            rooms: dict[str, list[str]] = {}
            for delivery_id, room in rows:
                rooms.setdefault(room, []).append(delivery_id)
            for ids in rooms.values():
                for start in range(0, len(ids), max_events):
                    chunk = ids[start : start + max_events]
                    txn = notice_txn(chunk)
                    self._db.executemany(
                        "INSERT INTO notice VALUES (?, ?)", [(i, txn) for i in chunk]
                    )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def notices(self) -> list[Notice]:
        """Sealed notices not yet accepted by the homeserver, oldest first."""
        rows = self._db.execute(
            "SELECT notice.txn, delivery.room, delivery.id, delivery.event FROM delivery"
            " JOIN notice ON notice.delivery = delivery.id WHERE delivery.sent IS NULL"
            " ORDER BY delivery.received, delivery.rowid"
        ).fetchall()
        out: dict[str, Notice] = {}
        for txn, room, delivery_id, event in rows:
            notice = out.setdefault(txn, Notice(txn, room, []))
            notice.items.append((delivery_id, ForgeEvent.from_json(event)))
        return list(out.values())

    def mark_sent(self, txn: str) -> None:
        """The homeserver accepted the notice `txn`: its deliveries are done, all at once."""
        self._db.execute(
            "UPDATE delivery SET sent = ? WHERE sent IS NULL"
            " AND id IN (SELECT delivery FROM notice WHERE txn = ?)",
            (time.time(), txn),
        )

    def close(self) -> None:
        self._db.close()


def notice_txn(delivery_ids: list[str]) -> str:
    """A transaction id for the notice carrying these deliveries, made once, at its seal.

    It is stored with them (`Outbox.seal`), not made again from what is pending at the next
    try: deliveries accepted while a notice was in flight would change it, and after a
    crash between the homeserver accepting the notice and the outbox recording that, the
    notice re-sent under a new id would be posted twice.
    """
    digest = hashlib.sha256("\0".join(delivery_ids).encode()).hexdigest()[:32]
    return f"hermes-notice-{digest}"


class Dispatcher:
    """Drains the outbox: waits `window_s` after the first event so a burst shares a message."""

    def __init__(self, outbox: Outbox, send: Send, window_s: float = 2.0) -> None:
        self.outbox = outbox
        self.send = send
        self.window_s = window_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._wake.set()  # flush what an earlier run accepted but did not report
        self._task = asyncio.create_task(self._run(), name="forge-dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        failures = 0
        while True:
            await self._wake.wait()
            # Deliberate batching delay: events arriving meanwhile join this message.
            await asyncio.sleep(self.window_s)
            self._wake.clear()
            if await self.flush():
                failures = 0
            else:
                self._wake.set()
                # The homeserver refused; keep the events and try again later.
                await asyncio.sleep(SEND_BACKOFF.delay(failures))
                failures += 1

    async def flush(self) -> bool:
        self.outbox.seal(MAX_EVENTS_PER_MESSAGE)
        ok = True
        refused: set[str] = set()  # a room's later notices wait for its earlier ones
        for notice in self.outbox.notices():
            if notice.room in refused:
                continue
            # Rendering screens each quoted text (see bot.forge.events): off the loop.
            text = await asyncio.to_thread(render_notice, [e for _, e in notice.items])
            if await self.send(notice.room, text, notice.txn):
                self.outbox.mark_sent(notice.txn)
            else:
                ok = False
                refused.add(notice.room)
                log.warning("forge_notice_send_failed", extra=fields(room=notice.room))
        return ok


class BodyTooLarge(Exception):
    """More than the cap was declared or sent."""


async def read_body(request: web.BaseRequest, limit: int, timeout_s: float) -> bytes:
    """The body, refused as soon as it is known to exceed `limit`; at most `timeout_s` long.

    A declared Content-Length over the cap is refused before a byte of the body is read;
    a chunked body is counted as it arrives, so memory stays within one chunk of the cap.
    """
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async with asyncio.timeout(timeout_s):
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
    return b"".join(chunks)


class WebhookReceiver:
    """The aiohttp side: authenticate, parse, route to the project's room, accept."""

    def __init__(
        self,
        secret: str,
        projects: ProjectStore,
        outbox: Outbox,
        dispatcher: Dispatcher,
        own_login: str | None = None,
        *,
        read_timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        self._secret = secret.encode()
        self.projects = projects
        self.outbox = outbox
        self.dispatcher = dispatcher
        self.read_timeout_s = read_timeout_s
        # The fleet's own Gitea login: its actions (a burn's comments and labels, issues it
        # opened on request) are reported by the bot already, so they are not echoed.
        self.own_login = own_login

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)  # read_body enforces it as well
        app.router.add_post("/webhooks/gitea", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        try:
            body = await read_body(request, MAX_BODY, self.read_timeout_s)
        except BodyTooLarge:
            return web.json_response({"error": "body too large"}, status=413)
        except TimeoutError:
            log.warning("webhook_body_timeout", extra=fields(peer=request.remote))
            response = web.json_response({"error": "body not sent in time"}, status=408)
            response.force_close()
            return response
        # Off the event loop: measuring and parsing up to 2 MB of JSON is not free.
        decoded = await asyncio.to_thread(decode_delivery, self._secret, body, request.headers)
        if isinstance(decoded, Rejection):
            if decoded.status == 401:
                log.warning("webhook_bad_signature", extra=fields(peer=request.remote))
                return web.json_response({"error": "bad signature"}, status=401)
            log.warning("webhook_bad_body", extra=fields(error=decoded.reason))
            return web.json_response({"error": decoded.reason}, status=decoded.status)
        delivery, event_name, event = decoded.delivery_id, decoded.event_name, decoded.event
        room = None
        if event is not None and self.own_login and event.actor == self.own_login:
            event = None
        if event is not None:
            projects = [p for p in self.projects.by_repo(event.repo) if p.room_id]
            room = projects[0].room_id if projects else None
        fresh = self.outbox.accept(delivery, room, event, decoded.body_sha256)
        log.info(
            "webhook_received",
            extra=fields(
                delivery=delivery,
                gitea_event=event_name,
                action=event.action if event else None,
                routed=room is not None,
                duplicate=not fresh,
            ),
        )
        if fresh and room is not None:
            self.dispatcher.notify()
        status = "queued" if room else "ignored"
        return web.json_response({"status": status if fresh else "duplicate"})


class WebhookServer:
    """Binds the receiver (loopback by default) and runs the dispatcher."""

    def __init__(self, receiver: WebhookReceiver, host: str, port: int) -> None:
        self.receiver = receiver
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        timeout = self.receiver.read_timeout_s
        # aiohttp's keep-alive timer runs from the moment a connection is made until a
        # request's headers are complete, so it bounds a client that stalls in its headers
        # (or sends none); the default is an hour. After a refused or timed-out body it
        # lingers to drain what the client still sends, for at most as long again.
        self._runner = web.AppRunner(
            self.receiver.app(),
            access_log=None,
            keepalive_timeout=timeout,
            lingering_time=timeout,
        )
        await self._runner.setup()
        # Port 0 lets the kernel pick a free port as it binds: no window for another
        # process to take a port probed a moment earlier.
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self.receiver.dispatcher.start()
        log.info("webhook_listening", extra=fields(host=self.host, port=self.port))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/webhooks/gitea"

    async def stop(self) -> None:
        await self.receiver.dispatcher.stop()
        if self._runner is not None:
            await self._runner.cleanup()
