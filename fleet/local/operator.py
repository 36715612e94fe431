"""A scripted operator: a second end-to-end encrypted client, as a person on Element would be.

Used by the end-to-end tests, the benchmarks and `fleet demo`. It waits on events (with
timeouts), never on sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nio import (
    AsyncClient,
    AsyncClientConfig,
    JoinResponse,
    LoginError,
    MatrixRoom,
    MegolmEvent,
    RoomCreateError,
    RoomMemberEvent,
    RoomMessageNotice,
    RoomMessageText,
    RoomSendResponse,
)


@dataclass(frozen=True)
class Seen:
    room_id: str
    event_id: str
    sender: str
    body: str
    msgtype: str
    reply_to: str | None
    replaces: str | None
    received_at: float
    source: dict[str, Any]


class OperatorClient:
    def __init__(self, homeserver: str, user_id: str, password: str, store_dir: Path) -> None:
        store_dir.mkdir(parents=True, exist_ok=True)
        self.password = password
        self.client = AsyncClient(
            homeserver,
            user_id,
            store_path=str(store_dir),
            config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True),
        )
        self.seen: list[Seen] = []
        self.undecryptable: list[str] = []
        self.members: dict[str, set[str]] = {}
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    @property
    def user_id(self) -> str:
        return str(self.client.user_id)

    async def login(self, device_name: str = "operator-test") -> None:
        resp = await self.client.login(self.password, device_name=device_name)
        if isinstance(resp, LoginError):
            raise RuntimeError(f"operator login failed: {resp.message}")
        if self.client.should_upload_keys:
            await self.client.keys_upload()
        self.client.add_event_callback(self._on_msg, (RoomMessageText, RoomMessageNotice))
        self.client.add_event_callback(self._on_megolm, MegolmEvent)
        self.client.add_event_callback(self._on_member, RoomMemberEvent)
        await self.client.sync(timeout=0, full_state=True)
        self._task = asyncio.create_task(self.client.sync_forever(timeout=3000))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.client.close()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _on_msg(self, room: MatrixRoom, event: RoomMessageText | RoomMessageNotice) -> None:
        relates = event.source.get("content", {}).get("m.relates_to", {}) or {}
        self.seen.append(
            Seen(
                room_id=room.room_id,
                event_id=event.event_id,
                sender=event.sender,
                body=event.body,
                msgtype="m.notice" if isinstance(event, RoomMessageNotice) else "m.text",
                reply_to=(relates.get("m.in_reply_to") or {}).get("event_id"),
                replaces=relates.get("event_id")
                if relates.get("rel_type") == "m.replace"
                else None,
                received_at=time.perf_counter(),
                source=event.source,
            )
        )
        await self._notify()

    async def _on_megolm(self, room: MatrixRoom, event: MegolmEvent) -> None:
        self.undecryptable.append(event.event_id)
        await self._notify()

    async def _on_member(self, room: MatrixRoom, event: RoomMemberEvent) -> None:
        members = self.members.setdefault(room.room_id, set())
        if event.membership == "join":
            members.add(event.state_key)
        else:
            members.discard(event.state_key)
        await self._notify()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Wait until `predicate()` is truthy, re-checking on every new event."""

        async def _wait() -> Any:
            async with self._changed:
                while True:
                    value = predicate()
                    if value:
                        return value
                    await self._changed.wait()

        return await asyncio.wait_for(_wait(), timeout)

    async def create_encrypted_room(self, name: str, invite: list[str]) -> str:
        resp = await self.client.room_create(
            name=name,
            invite=invite,
            initial_state=[
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                }
            ],
        )
        if isinstance(resp, RoomCreateError):
            raise RuntimeError(f"room create failed: {resp.message}")
        return str(resp.room_id)

    async def join(self, room_id: str, timeout: float = 30.0) -> None:
        """Join and wait until our own sync knows the room (so we can send into it)."""
        resp = await self.client.join(room_id)
        if not isinstance(resp, JoinResponse):
            raise RuntimeError(f"join failed: {resp}")
        await self.wait_for(lambda: self.user_id in self.members.get(room_id, set()), timeout)

    async def wait_joined(self, room_id: str, user_id: str, timeout: float = 30.0) -> None:
        await self.wait_for(lambda: user_id in self.members.get(room_id, set()), timeout)

    async def send_text(self, room_id: str, text: str) -> str:
        return await self.send_content(room_id, {"msgtype": "m.text", "body": text})

    async def send_content(self, room_id: str, content: dict[str, Any]) -> str:
        """Any `m.room.message` content (a reply with its fallback, an edit...)."""
        # An operator's own client trusts the bot like Element's default does (shares keys
        # with unverified devices); the bot's trust decisions are the ones under test.
        if self.client.should_query_keys:
            await self.client.keys_query()
        resp = await self.client.room_send(
            room_id, "m.room.message", content, ignore_unverified_devices=True
        )
        if not isinstance(resp, RoomSendResponse):
            raise RuntimeError(f"send failed: {resp}")
        return str(resp.event_id)

    def replies_to(self, event_id: str) -> list[Seen]:
        return [s for s in self.seen if s.reply_to == event_id]

    async def wait_reply(self, event_id: str, timeout: float = 30.0) -> Seen:
        found: list[Seen] = await self.wait_for(lambda: self.replies_to(event_id), timeout)
        return found[0]

    async def ask(self, room_id: str, text: str, timeout: float = 30.0) -> Seen:
        event_id = await self.send_text(room_id, text)
        return await self.wait_reply(event_id, timeout)
