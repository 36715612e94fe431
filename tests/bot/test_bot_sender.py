"""The one way out (`bot.matrix.sender`): 429s, transaction ids across a crash, room order.

A small aiohttp homeserver stands in here, and only here: these tests need answers Synapse
gives only by chance (a 429 with a chosen `retry_after_ms` on a chosen request, a send the
homeserver takes but never answers). It keeps what matters of a homeserver: a repeated
transaction id is answered with the first event, never posted twice. The same sender
against a real rate-limiting Synapse: tests/e2e/test_e2e_ratelimit.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from nio import AsyncClient

from bot.matrix.client import client_config
from bot.matrix.sender import Sender
from bot.matrix.state import BotState
from bot.pipeline.message import Reply
from fleetcore.metrics import Metrics
from fleettest.wait import wait_until

A, B = "!a:test", "!b:test"


@dataclass
class Request:
    room: str
    txn: str
    body: str
    at: float
    status: int = 200


@dataclass
class Homeserver:
    requests: list[Request] = field(default_factory=list)
    by_txn: dict[str, str] = field(default_factory=dict)  # txn -> event id
    posted: list[tuple[str, str]] = field(default_factory=list)  # (room, body), once each
    # room -> retry_after_ms for its next requests, one 429 each
    limits: dict[str, list[int]] = field(default_factory=dict)
    # While unset, an accepted send gets no answer (the bot "crashes" meanwhile).
    answer: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    db: Path | None = None  # the bot's state db, read when a request arrives
    staged_on_arrival: list[set[str]] = field(default_factory=list)

    async def send(self, request: web.Request) -> web.Response:
        room, txn = request.match_info["room"], request.match_info["txn"]
        req = Request(room, txn, (await request.json())["body"], time.monotonic())
        self.requests.append(req)
        if self.db is not None:  # a second connection, as a restarted bot would read it
            with sqlite3.connect(self.db) as db:
                self.staged_on_arrival.append(
                    {t for (t,) in db.execute("SELECT txn_id FROM outbox")}
                )
        self.changed.set()
        if self.limits.get(room):
            req.status = 429
            ms = self.limits[room].pop(0)
            return web.json_response(
                {"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests", "retry_after_ms": ms},
                status=429,
            )
        if txn not in self.by_txn:
            self.by_txn[txn] = f"$event{len(self.by_txn)}"
            self.posted.append((room, req.body))
        await self.answer.wait()
        return web.json_response({"event_id": self.by_txn[txn]})

    def bodies(self, room: str) -> list[str]:
        return [body for r, body in self.posted if r == room]


@pytest.fixture
async def homeserver() -> AsyncIterator[tuple[Homeserver, str]]:
    hs = Homeserver()
    hs.answer.set()
    app = web.Application()
    app.router.add_put("/_matrix/client/{version}/rooms/{room}/send/{type}/{txn}", hs.send)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield hs, f"http://127.0.0.1:{port}"
    finally:
        hs.answer.set()
        await runner.cleanup()


class PlainRooms:
    """Unencrypted rooms: nothing to decide or share; records the crisis sessions asked."""

    def __init__(self) -> None:
        self.one_offs: list[tuple[str, str]] = []

    async def prepare(self, room_id: str) -> None:
        return None

    async def decide(self) -> None:
        return None

    @asynccontextmanager
    async def one_off(self, room_id: str, writer: str) -> AsyncIterator[None]:
        self.one_offs.append((room_id, writer))
        yield


@asynccontextmanager
async def bot(
    url: str, db: Path, keys: PlainRooms | None = None, metrics: Metrics | None = None
) -> AsyncIterator[Sender]:
    """One run of the bot's sending side: the product's client config, its state db."""
    client = AsyncClient(url, "@bot:test", config=client_config(encryption=False))
    client.access_token = "token"
    state = BotState(db)
    try:
        yield Sender(client, state, keys or PlainRooms(), metrics or Metrics())
    finally:
        await client.close()
        state.close()


async def test_a_429_waits_retry_after_ms_and_holds_up_only_its_own_room(
    homeserver: tuple[Homeserver, str], tmp_path: Path
) -> None:
    hs, url = homeserver
    hs.limits[A] = [1500]
    waits: list[float] = []
    metrics = Metrics()
    metrics.subscribe(
        lambda name, v: waits.append(v) if name == "matrix.send_rate_limited_s" else None
    )
    async with bot(url, tmp_path / "bot.db", metrics=metrics) as sender:
        in_a = asyncio.create_task(sender.text(A, "first in A", "txn-a"))
        await wait_until(lambda: hs.requests, changed=hs.changed, what="A's first try")
        # A waits out its 429; B, the same bot's other room, is not held behind it.
        assert await sender.text(B, "meanwhile in B", "txn-b") is not None
        assert not in_a.done()
        event_a = await asyncio.wait_for(in_a, 10)
    assert event_a == hs.by_txn["txn-a"]
    tries = [r for r in hs.requests if r.room == A]
    assert [(r.txn, r.status) for r in tries] == [("txn-a", 429), ("txn-a", 200)]
    assert tries[1].at - tries[0].at >= 1.5  # retry_after_ms, not the backoff's 1 s guess
    assert waits == [1.5]
    assert hs.bodies(A) == ["first in A"] and hs.bodies(B) == ["meanwhile in B"]


async def test_a_rooms_messages_leave_in_order_and_a_crisis_reply_goes_first(
    homeserver: tuple[Homeserver, str], tmp_path: Path
) -> None:
    hs, url = homeserver
    hs.limits[A] = [300]
    keys = PlainRooms()
    async with bot(url, tmp_path / "bot.db", keys) as sender:
        first = asyncio.create_task(sender.text(A, "one", "t1"))
        await wait_until(lambda: hs.requests, changed=hs.changed, what="the first try")
        queued = [
            asyncio.create_task(sender.text(A, "two", "t2")),
            asyncio.create_task(sender.text(A, "three", "t3")),
            asyncio.create_task(
                sender.reply(Reply(A, "crisis reply", "$ev", reach_user="@writer:test"), "tc")
            ),
        ]
        done = await asyncio.wait_for(asyncio.gather(first, *queued), 10)
    assert all(done)
    # "one" was already on its way (rate-limited); the crisis reply overtakes the rest.
    assert hs.bodies(A) == ["one", "crisis reply", "two", "three"]
    assert keys.one_offs == [(A, "@writer:test")]


async def test_a_txn_id_is_stored_before_the_send_and_reused_after_a_crash(
    homeserver: tuple[Homeserver, str], tmp_path: Path
) -> None:
    hs, url = homeserver
    db = tmp_path / "bot.db"
    hs.db = db
    hs.answer.clear()  # the homeserver takes the message but its answer never arrives
    async with bot(url, db) as sender:
        sending = asyncio.create_task(sender.text(A, "burn finished"))  # no txn of the caller's
        await wait_until(lambda: hs.requests, changed=hs.changed, what="the send")
        txn = hs.requests[0].txn
        assert txn in hs.staged_on_arrival[0]  # on disk before the request went out
        sending.cancel()  # the crash
        with pytest.raises(asyncio.CancelledError):
            await sending
    hs.answer.set()
    async with bot(url, db) as restarted:
        await asyncio.wait_for(restarted.resend_unsent(), 10)
        assert [r.txn for r in hs.requests] == [txn, txn]
        assert hs.bodies(A) == ["burn finished"]  # deduplicated: posted once
        # Confirmed now: the caller repeating the id gets the event, and nothing is sent.
        assert await restarted.text(A, "burn finished", txn) == hs.by_txn[txn]
        assert len(hs.requests) == 2
    async with bot(url, db) as third:
        await third.resend_unsent()
        assert len(hs.requests) == 2  # nothing left to re-send
