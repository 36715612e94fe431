"""A crash while a forge notice is on its way to the room (issue #14): after the restart
each delivery is reported once, whatever arrived between the send and the crash.

The whole path of the running bot: the webhook receiver, its outbox, the dispatcher, the
one `Sender` with its own outbox in the bot's state db, against the stand-in homeserver of
tests/bot/test_bot_sender.py (a repeated transaction id is answered with the first event,
as Synapse does for the same device). The crash is the end of a run while a send is in
flight: the dispatcher is cancelled mid-send and nothing after it runs, as under kill -9.

Two places the notice can be at the crash: the homeserver took it and its answer was lost,
or the bot staged it and the homeserver never got it. Either way a delivery accepted while
the notice was in flight is pending beside it at the restart.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from nio import AsyncClient

from bot.forge.webhooks import Dispatcher, Outbox, WebhookReceiver, WebhookServer
from bot.matrix.client import client_config
from bot.matrix.sender import Sender
from bot.matrix.state import BotState
from fleetcore.metrics import Metrics
from fleetcore.proc import free_port
from fleetcore.projects import Project, ProjectStore
from fleettest.wait import wait_until
from tests.bot.test_bot_sender import Homeserver, PlainRooms
from tests.forge.shared import DELIVERIES, resign

SECRET = "test-secret-not-the-recorded-one"
ROOM = "!project:test"
OPENED, COMMENTED = "issues.opened.json", "issue_comment.created.json"
# How each recorded delivery reads in a notice (bot.forge.events.render_line).
MARK = {OPENED: "🆕", COMMENTED: "💬"}
# A notice is screened as it is rendered: the process's first screen loads the learned
# detector, many seconds on a loaded machine.
LOAD_S = 120.0


@asynccontextmanager
async def serving(hs: Homeserver) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_put("/_matrix/client/{version}/rooms/{room}/send/{type}/{txn}", hs.send)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        hs.answer.set()
        await runner.cleanup()


@dataclass
class Run:
    """One run of the bot's forge-notice side, on the state files of `tmp_path`."""

    state: BotState
    sender: Sender
    outbox: Outbox
    server: WebhookServer
    http: httpx.AsyncClient

    async def post(self, file: str) -> None:
        d = next(x for x in DELIVERIES["deliveries"] if x["file"] == file)
        headers, raw = resign(d, SECRET, None, str(uuid.uuid4()))
        resp = await self.http.post(self.server.url, content=raw, headers=headers)
        assert resp.json() == {"status": "queued"}, resp.text  # answered 200: a promise


@asynccontextmanager
async def run(homeserver_url: str, tmp_path: Path) -> AsyncIterator[Run]:
    """Built as `BotApp` builds it: the webhook dispatcher starts before the first sync
    re-sends what the sender's outbox holds (the test calls `resend_unsent` itself)."""
    client = AsyncClient(homeserver_url, "@bot:test", config=client_config(encryption=False))
    client.access_token = "token"  # the saved session: the same device after a restart
    state = BotState(tmp_path / "bot.db")
    sender = Sender(client, state, PlainRooms(), Metrics())

    async def send(room_id: str, text: str, txn_id: str) -> bool:  # bot.forge.area._sender
        return await sender.text(room_id, text, txn_id) is not None

    projects = ProjectStore(
        tmp_path / "projects.json", {"ex": Project("ex", "example/example", ROOM)}
    )
    outbox = Outbox(tmp_path / "webhooks.db")
    receiver = WebhookReceiver(SECRET, projects, outbox, Dispatcher(outbox, send, 0.05))
    server = WebhookServer(receiver, "127.0.0.1", 0)
    await server.start()
    http = httpx.AsyncClient(timeout=10)
    try:
        yield Run(state, sender, outbox, server, http)
    finally:  # the crash: the dispatcher is cancelled wherever it is, mid-send
        await http.aclose()
        await server.stop()
        outbox.close()
        await client.close()
        state.close()


def reported(hs: Homeserver) -> dict[str, int]:
    """How often each delivery appears in what the homeserver posted in the room."""
    bodies = hs.bodies(ROOM)
    return {file: sum(body.count(mark) for body in bodies) for file, mark in MARK.items()}


@pytest.mark.parametrize("taken", [True, False], ids=["taken-answer-lost", "never-arrived"])
async def test_a_notice_in_flight_at_a_crash_is_posted_once_after_the_restart(
    tmp_path: Path, taken: bool
) -> None:
    hs = Homeserver()
    async with serving(hs) as url:
        hs.answer.clear()  # the homeserver takes a send but never answers before the crash
        # Never arrived: the first run's homeserver is not there (nio retries meanwhile).
        first_url = url if taken else f"http://127.0.0.1:{free_port()}"
        async with run(first_url, tmp_path) as before:
            await before.post(OPENED)
            if taken:
                await wait_until(
                    lambda: hs.posted, changed=hs.changed, timeout=LOAD_S, what="notice taken"
                )
            else:
                never = before.state
                await wait_until(
                    never.unsent,
                    changed=hs.changed,
                    poll_s=0.02,
                    timeout=LOAD_S,
                    what="notice staged",
                )
            # In flight beside it: accepted and answered 200 before the crash.
            await before.post(COMMENTED)
        assert reported(hs) == {OPENED: 1 if taken else 0, COMMENTED: 0}

        hs.answer.set()
        async with run(url, tmp_path) as after:
            await after.sender.resend_unsent()
            await wait_until(
                lambda: not after.outbox.pending() and not after.state.unsent(),
                changed=hs.changed,
                poll_s=0.02,
                timeout=LOAD_S,
                what="every accepted delivery reported",
            )
        assert reported(hs) == {OPENED: 1, COMMENTED: 1}, hs.bodies(ROOM)
