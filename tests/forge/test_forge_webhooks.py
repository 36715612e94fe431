"""The real `/webhooks/gitea` endpoint, replaying Gitea's recorded deliveries re-signed.

The room side is a recording `send` here; the end-to-end test posts into a real room.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from bot.forge.webhooks import Dispatcher, Outbox, WebhookReceiver, WebhookServer
from fleetcore.projects import Project, ProjectStore
from tests.forge.shared import DELIVERIES, body_of, resign

SECRET = "test-secret-not-the-recorded-one"
ROOM = "!project:test"


@dataclass
class Room:
    """Records messages; can refuse the first N sends like a homeserver that gave up."""

    refuse: int = 0
    messages: list[str] = field(default_factory=list)
    txn_ids: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, room_id: str, text: str, txn_id: str) -> bool:
        assert room_id == ROOM
        self.txn_ids.append(txn_id)
        if self.refuse:
            self.refuse -= 1
            return False
        self.messages.append(text)
        self.changed.set()
        return True

    async def wait_for(self, predicate: object, timeout: float = 10.0) -> None:
        async def loop() -> None:
            while not predicate():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), timeout)


def event_count(messages: list[str]) -> int:
    n = 0
    for m in messages:
        first = m.splitlines()[0]
        n += int(first.split()[0]) if "forge events in" in first else 1
    return n


def distinct(file: str, i: int) -> bytes:
    """A recorded body as a later event on the same issue: Gitea's bodies differ in time."""
    payload = json.loads(body_of(next(d for d in DELIVERIES["deliveries"] if d["file"] == file)))
    payload["issue"]["updated_at"] = f"2022-03-09T10:{i // 60:02d}:{i % 60:02d}Z"
    return json.dumps(payload).encode()


@dataclass
class Hook:
    server: WebhookServer
    room: Room
    outbox: Outbox
    http: httpx.AsyncClient

    async def post(
        self,
        file: str,
        *,
        secret: str = SECRET,
        delivery_id: str | None = None,
        body: bytes | None = None,
    ) -> httpx.Response:
        d = next(x for x in DELIVERIES["deliveries"] if x["file"] == file)
        headers, raw = resign(d, secret, body, delivery_id or str(uuid.uuid4()))
        return await self.http.post(self.server.url, content=raw, headers=headers)


async def make_hook(tmp_path: Path, room: Room, window_s: float = 0.05) -> Hook:
    projects = ProjectStore(
        tmp_path / "projects.json", {"ex": Project("ex", "example/example", ROOM)}
    )
    outbox = Outbox(tmp_path / "webhooks.db")
    dispatcher = Dispatcher(outbox, room.send, window_s)
    server = WebhookServer(WebhookReceiver(SECRET, projects, outbox, dispatcher), "127.0.0.1", 0)
    await server.start()
    return Hook(server, room, outbox, httpx.AsyncClient(timeout=10))


@pytest.fixture
async def hook(tmp_path: Path) -> AsyncIterator[Hook]:
    h = await make_hook(tmp_path, Room())
    yield h
    await h.http.aclose()
    await h.server.stop()
    h.outbox.close()


async def test_each_recorded_delivery_becomes_a_notice_in_the_project_room(hook: Hook) -> None:
    for d in DELIVERIES["deliveries"]:
        r = await hook.post(d["file"])
        assert r.status_code == 200, r.text
        assert r.json() == {"status": "queued"}
    await hook.room.wait_for(lambda: event_count(hook.room.messages) == 3)
    text = "\n".join(hook.room.messages)
    assert "opened" in text and "set labels" in text and "💬" in text


async def test_a_bad_signature_is_401_and_posts_nothing(hook: Hook) -> None:
    r = await hook.post("issue_comment.created.json", secret="wrong")
    assert r.status_code == 401
    # The recorded signature (made with another secret) is refused too.
    d = DELIVERIES["deliveries"][0]
    r = await hook.http.post(hook.server.url, content=body_of(d), headers=d["headers"])
    assert r.status_code == 401
    r = await hook.http.post(hook.server.url, content=b"{}", headers={"X-Gitea-Event": "issues"})
    assert r.status_code == 401
    assert hook.outbox.pending() == {}
    await hook.server.receiver.dispatcher.flush()
    assert hook.room.messages == []


async def test_a_repeated_delivery_posts_once(hook: Hook) -> None:
    first = await hook.post("issues.opened.json", delivery_id="same-id")
    again = await hook.post("issues.opened.json", delivery_id="same-id")
    assert first.json() == {"status": "queued"}
    assert again.json() == {"status": "duplicate"}
    await hook.room.wait_for(lambda: len(hook.room.messages) == 1)
    await hook.post("issues.opened.json", delivery_id="same-id")
    await hook.server.receiver.dispatcher.flush()
    assert len(hook.room.messages) == 1


async def test_unknown_events_are_acknowledged_and_ignored(hook: Hook) -> None:
    d = DELIVERIES["deliveries"][0]
    headers, raw = resign(d, SECRET, delivery_id="push-1")
    headers["X-Gitea-Event"] = headers["X-Gitea-Event-Type"] = "push"
    r = await hook.http.post(hook.server.url, content=raw, headers=headers)
    assert r.status_code == 200
    assert r.json() == {"status": "ignored"}
    assert hook.outbox.pending() == {}


async def test_a_signed_but_malformed_body_is_400(hook: Hook) -> None:
    r = await hook.post("issues.opened.json", body=b"{not json")
    assert r.status_code == 400
    r = await hook.post("issues.opened.json", body=json.dumps({"action": "opened"}).encode())
    assert r.status_code == 400


async def test_an_event_for_a_repo_without_a_project_is_ignored(hook: Hook) -> None:
    payload = json.loads(body_of(DELIVERIES["deliveries"][0]))
    payload["repository"]["full_name"] = "someone/else"
    r = await hook.post("issues.opened.json", body=json.dumps(payload).encode())
    assert r.json() == {"status": "ignored"}


async def test_a_burst_of_50_becomes_a_handful_of_messages(tmp_path: Path) -> None:
    room = Room()
    h = await make_hook(tmp_path, room, window_s=0.5)
    try:
        files = [d["file"] for d in DELIVERIES["deliveries"]]
        responses = await asyncio.gather(
            *(h.post(files[i % 3], body=distinct(files[i % 3], i)) for i in range(50))
        )
        assert all(r.status_code == 200 for r in responses)
        await room.wait_for(lambda: event_count(room.messages) == 50)
        assert len(room.messages) <= 5, room.messages
    finally:
        await h.http.aclose()
        await h.server.stop()
        h.outbox.close()


async def test_a_refused_send_is_retried_until_the_homeserver_accepts(tmp_path: Path) -> None:
    room = Room(refuse=2)
    h = await make_hook(tmp_path, room)
    h.server.receiver.dispatcher.window_s = 0.01
    try:
        await h.post("issues.opened.json")
        await room.wait_for(lambda: event_count(room.messages) == 1, timeout=20)
        assert room.refuse == 0
        # Every try of the same notice carries the same transaction id, so a notice the
        # homeserver took before a crash is not posted again when it is re-sent.
        assert len(room.txn_ids) == 3 and len(set(room.txn_ids)) == 1
    finally:
        await h.http.aclose()
        await h.server.stop()
        h.outbox.close()


async def test_accepted_events_survive_a_crash_before_they_were_posted(tmp_path: Path) -> None:
    down = Room(refuse=10**6)  # the homeserver never accepts before the "crash"
    h = await make_hook(tmp_path, down)
    await h.post("issues.opened.json", delivery_id="before-crash")
    await h.post("issue_comment.created.json", delivery_id="before-crash-2")
    await h.http.aclose()
    await h.server.stop()
    h.outbox.close()

    room = Room()
    h2 = await make_hook(tmp_path, room)
    try:
        await room.wait_for(lambda: event_count(room.messages) == 2)
        again = await h2.post("issues.opened.json", delivery_id="before-crash")
        assert again.json() == {"status": "duplicate"}
    finally:
        await h2.http.aclose()
        await h2.server.stop()
        h2.outbox.close()


async def test_the_fleets_own_actions_are_not_echoed(hook: Hook) -> None:
    hook.server.receiver.own_login = "example"  # the sender of the recorded deliveries
    r = await hook.post("issue_comment.created.json")
    assert r.json() == {"status": "ignored"}
    assert hook.outbox.pending() == {}
