"""`/webhooks/gitea`: forge events into project rooms, each exactly once, none lost.

A delivery is verified (HMAC of the raw body) before anything parses it, then written to
an SQLite outbox keyed by `X-Gitea-Delivery` before Gitea gets its 200: a repeated
delivery is a no-op, and a crash between the 200 and the room message loses nothing, the
outbox is flushed on the next start. A dispatcher drains the outbox in batches (one
message per room per window), so a burst of 50 events becomes a handful of messages, and
it keeps an event until the homeserver accepted the message that reports it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from bot.forge.events import (
    BadDelivery,
    ForgeEvent,
    parse_delivery,
    render_notice,
    verify_signature,
)
from fleetcore.db import open_private_db
from fleetcore.log import fields
from fleetcore.projects import ProjectStore
from fleetcore.retry import Backoff

log = logging.getLogger("hermes.forge.webhooks")

MAX_BODY = 2 * 1024 * 1024
MAX_EVENTS_PER_MESSAGE = 25
# After a refused send: 1 s, doubling up to a minute, until the homeserver takes it.
SEND_BACKOFF = Backoff(1.0, 60.0)
# (room_id, text, transaction id) -> accepted by the homeserver
Send = Callable[[str, str, str], Awaitable[bool]]


class Outbox:
    """Deliveries accepted but not yet reported; the dedupe table is the same table."""

    def __init__(self, path: Path) -> None:
        self._db = open_private_db(
            path,
            "CREATE TABLE IF NOT EXISTS delivery (id TEXT PRIMARY KEY, room TEXT,"
            " event TEXT, received REAL, sent REAL);",
        )

    def accept(self, delivery_id: str, room_id: str | None, event: ForgeEvent | None) -> bool:
        """Record a delivery; False when this id was seen before (Gitea redelivered)."""
        sent = None if room_id and event else time.time()  # nothing to report: done already
        cur = self._db.execute(
            "INSERT OR IGNORE INTO delivery VALUES (?, ?, ?, ?, ?)",
            (delivery_id, room_id, event.to_json() if event else None, time.time(), sent),
        )
        return cur.rowcount == 1

    def pending(self) -> dict[str, list[tuple[str, ForgeEvent]]]:
        rows = self._db.execute(
            "SELECT id, room, event FROM delivery WHERE sent IS NULL ORDER BY received, rowid"
        ).fetchall()
        out: dict[str, list[tuple[str, ForgeEvent]]] = {}
        for delivery_id, room, event in rows:
            out.setdefault(room, []).append((delivery_id, ForgeEvent.from_json(event)))
        return out

    def mark_sent(self, ids: list[str]) -> None:
        now = time.time()
        self._db.executemany("UPDATE delivery SET sent = ? WHERE id = ?", [(now, i) for i in ids])

    def close(self) -> None:
        self._db.close()


def notice_txn(delivery_ids: list[str]) -> str:
    """A transaction id for the notice carrying these deliveries.

    Pending deliveries are read back in the order they were received, so after a crash
    between the homeserver accepting a notice and the outbox recording it, the same
    deliveries form the same notice with the same id, and the homeserver answers it with the
    first event instead of posting it twice.
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
        ok = True
        for room, items in self.outbox.pending().items():
            for start in range(0, len(items), MAX_EVENTS_PER_MESSAGE):
                chunk = items[start : start + MAX_EVENTS_PER_MESSAGE]
                ids = [i for i, _ in chunk]
                if await self.send(room, render_notice([e for _, e in chunk]), notice_txn(ids)):
                    self.outbox.mark_sent(ids)
                else:
                    ok = False
                    log.warning("forge_notice_send_failed", extra=fields(room=room))
                    break
        return ok


class WebhookReceiver:
    """The aiohttp side: authenticate, parse, route to the project's room, accept."""

    def __init__(
        self, secret: str, projects: ProjectStore, outbox: Outbox, dispatcher: Dispatcher
    ) -> None:
        self._secret = secret.encode()
        self.projects = projects
        self.outbox = outbox
        self.dispatcher = dispatcher
        # The fleet's own Gitea login: its actions (a burn's comments and labels, issues it
        # opened on request) are reported by the bot already, so they are not echoed.
        self.own_login: str | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/webhooks/gitea", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": "body too large"}, status=413)
        if not verify_signature(self._secret, body, request.headers.get("X-Gitea-Signature")):
            log.warning("webhook_bad_signature", extra=fields(peer=request.remote))
            return web.json_response({"error": "bad signature"}, status=401)
        delivery = request.headers.get("X-Gitea-Delivery", "").strip()
        event_name = request.headers.get("X-Gitea-Event", "").strip()
        if not delivery:
            return web.json_response({"error": "missing X-Gitea-Delivery"}, status=400)
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise BadDelivery("body is not a JSON object")
            event = parse_delivery(event_name, payload)
        except (ValueError, BadDelivery) as exc:
            log.warning("webhook_bad_body", extra=fields(delivery=delivery, error=str(exc)[:100]))
            return web.json_response({"error": "malformed body"}, status=400)
        room = None
        if event is not None and self.own_login and event.actor == self.own_login:
            event = None
        if event is not None:
            projects = [p for p in self.projects.by_repo(event.repo) if p.room_id]
            room = projects[0].room_id if projects else None
        fresh = self.outbox.accept(delivery, room, event)
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
        self._runner = web.AppRunner(self.receiver.app(), access_log=None)
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
