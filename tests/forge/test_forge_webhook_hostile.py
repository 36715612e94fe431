"""The real `/webhooks/gitea` endpoint against hostile clients (issue #14).

Every answer to a bad request is a 4xx, never a 500: a 500 means an exception escaped, and
one that escapes before the signature check is reachable by anyone who can open a socket.
A client that stalls is disconnected by the server within the configured read timeout,
waited for as the socket's end-of-file, not slept for.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.forge.webhooks import MAX_BODY, Dispatcher, Outbox, WebhookReceiver, WebhookServer
from fleetcore.projects import Project, ProjectStore
from tests.forge.shared import DELIVERIES, body_of, resign
from tests.forge.test_forge_webhooks import ROOM, SECRET, Hook, Room

READ_TIMEOUT_S = 0.5
# Generous against a loaded machine; a server without a timeout holds the socket forever.
CLOSE_WAIT_S = 10.0


@pytest.fixture
async def hook(tmp_path: Path) -> AsyncIterator[Hook]:
    room = Room()
    projects = ProjectStore(
        tmp_path / "projects.json", {"ex": Project("ex", "example/example", ROOM)}
    )
    outbox = Outbox(tmp_path / "webhooks.db")
    receiver = WebhookReceiver(
        SECRET, projects, outbox, Dispatcher(outbox, room.send, 0.05), read_timeout_s=READ_TIMEOUT_S
    )
    server = WebhookServer(receiver, "127.0.0.1", 0)
    await server.start()
    h = Hook(server, room, outbox, httpx.AsyncClient(timeout=10))
    yield h
    await h.http.aclose()
    await server.stop()
    outbox.close()


def sign(body: bytes) -> str:
    return hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


async def post_signed(hook: Hook, body: bytes, event: str = "issues") -> httpx.Response:
    headers = {
        "Content-Type": "application/json",
        "X-Gitea-Event": event,
        "X-Gitea-Delivery": str(uuid.uuid4()),
        "X-Gitea-Signature": sign(body),
    }
    return await hook.http.post(hook.server.url, content=body, headers=headers)


def recorded(file: str) -> dict[str, object]:
    d = next(x for x in DELIVERIES["deliveries"] if x["file"] == file)
    payload: dict[str, object] = json.loads(body_of(d))
    return payload


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent until it closed the connection (read returns b'')."""
    got = b""
    async with asyncio.timeout(CLOSE_WAIT_S):
        while chunk := await reader.read(65536):
            got += chunk
    return got


async def test_a_non_ascii_signature_is_401_not_500(hook: Hook) -> None:
    d = DELIVERIES["deliveries"][0]
    headers, raw = resign(d, SECRET)
    headers["X-Gitea-Signature"] = "é" * 64  # type: ignore[assignment]
    encoded = {k.encode(): v.encode() for k, v in headers.items()}
    r = await hook.http.post(hook.server.url, content=raw, headers=encoded)
    assert r.status_code == 401, r.text


def _deep(n: int) -> bytes:
    return b'{"action":"opened","x":' + b"[" * n + b"]" * n + b"}"


def _with(file: str, path: list[str], value: object) -> bytes:
    payload = recorded(file)
    node: dict[str, object] = payload
    for key in path[:-1]:
        node = node[key]  # type: ignore[assignment]
    node[path[-1]] = value
    return json.dumps(payload).encode()


HOSTILE_BODIES: dict[str, tuple[str, bytes]] = {
    "number 1e400": (
        "issues",
        _with("issues.opened.json", ["issue", "number"], 0).replace(
            b'"number": 0', b'"number": 1e400'
        ),
    ),
    "sender a string": ("issues", _with("issues.opened.json", ["sender"], "someone")),
    "comment a string": (
        "issue_comment",
        _with("issue_comment.created.json", ["comment"], "a comment"),
    ),
    "labels a number": ("issues", _with("issues.label_updated.json", ["issue", "labels"], 7)),
    "issue a list": ("issues", _with("issues.opened.json", ["issue"], [1, 2])),
    "100,000-deep nesting": ("issues", _deep(100_000)),
    "lone surrogate in the title": (
        "issues",
        _with("issues.opened.json", ["issue", "title"], "x").replace(b'"x"', b'"\\ud800"'),
    ),
    "lone surrogate in the sender's login": (
        "issues",
        _with("issues.opened.json", ["sender", "login"], "x").replace(b'"x"', b'"\\udc80"'),
    ),
    "not utf-8": ("issues", b'{"action": "opened", "x": "\xff\xfe"}'),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
async def test_a_signed_hostile_body_is_answered_never_a_500(hook: Hook, name: str) -> None:
    event, body = HOSTILE_BODIES[name]
    r = await post_signed(hook, body, event)
    assert r.status_code in (200, 400), (r.status_code, r.text)
    # The receiver still works afterwards, and whatever was accepted can be sent.
    ok = await hook.post("issues.opened.json")
    assert ok.status_code == 200
    assert await hook.server.receiver.dispatcher.flush()


async def test_a_huge_title_makes_a_notice_the_homeserver_can_take(hook: Hook) -> None:
    """Matrix refuses events over 64 KB; a notice that never fits would block the room's queue."""
    body = _with("issues.opened.json", ["issue", "title"], "long " * 200_000)
    r = await post_signed(hook, body)
    assert r.status_code == 200 and r.json() == {"status": "queued"}
    await hook.room.wait_for(lambda: len(hook.room.messages) == 1)
    assert len(hook.room.messages[0].encode()) < 4096


async def test_the_same_body_under_20_new_delivery_ids_posts_once(hook: Hook) -> None:
    answers = [(await hook.post("issues.opened.json")).json()["status"] for _ in range(20)]
    assert answers == ["queued"] + ["duplicate"] * 19
    await hook.room.wait_for(lambda: len(hook.room.messages) >= 1)
    await hook.server.receiver.dispatcher.flush()
    assert len(hook.room.messages) == 1


async def test_a_body_over_the_cap_is_413_without_reading_it(hook: Hook) -> None:
    host, port = "127.0.0.1", hook.server.port
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            b"POST /webhooks/gitea HTTP/1.1\r\nHost: x\r\nX-Gitea-Event: issues\r\n"
            b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1)
        )
        await writer.drain()
        # Nothing of the body was sent: the answer comes from the declared length alone.
        head = await asyncio.wait_for(reader.readuntil(b"\r\n"), CLOSE_WAIT_S)
        assert head.startswith(b"HTTP/1.1 413"), head
    finally:
        writer.close()


async def test_a_chunked_body_over_the_cap_is_413(hook: Hook) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY // 65536 + 2):
            yield b"x" * 65536

    r = await hook.http.post(hook.server.url, content=chunks(), headers={"X-Gitea-Signature": "00"})
    assert r.status_code == 413


async def test_a_client_that_stalls_in_its_headers_is_disconnected(hook: Hook) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", hook.server.port)
    try:
        writer.write(b"POST /webhooks/gitea HTTP/1.1\r\nHost: x\r\n")  # no end of headers
        await writer.drain()
        await until_closed(reader)
    finally:
        writer.close()


async def test_a_client_that_stalls_in_its_body_is_disconnected(hook: Hook) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", hook.server.port)
    try:
        writer.write(
            b"POST /webhooks/gitea HTTP/1.1\r\nHost: x\r\nX-Gitea-Event: issues\r\n"
            b'Content-Length: 1000\r\n\r\n{"action": '
        )
        await writer.drain()
        answer = await until_closed(reader)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:100]
    finally:
        writer.close()
    # The server still answers afterwards.
    assert (await hook.post("issues.opened.json")).status_code == 200
