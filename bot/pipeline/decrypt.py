"""Stage 1: turn what nio hands us into `Incoming` (or `Undecryptable`).

nio has already tried Megolm decryption during sync; this stage decides what counts as a
message. It never looks inside the body: that is the crisis guard's first right.
"""

from __future__ import annotations

from collections.abc import Callable

from nio import MatrixRoom, MegolmEvent, RoomMessageText

from bot.pipeline.message import Incoming, Undecryptable

DeviceResolver = Callable[[str, str | None], tuple[str | None, bool]]


def from_event(
    room: MatrixRoom,
    event: RoomMessageText | MegolmEvent,
    own_user_id: str,
    resolve_device: DeviceResolver,
) -> Incoming | Undecryptable | None:
    """None means: not for the pipeline (our own echo, or plaintext in an encrypted room)."""
    if event.sender == own_user_id:
        return None
    if isinstance(event, MegolmEvent):
        return Undecryptable(
            room_id=room.room_id,
            event_id=event.event_id,
            sender=event.sender,
            timestamp_ms=event.server_timestamp,
            session_id=event.session_id,
        )
    encrypted = bool(getattr(event, "decrypted", False))
    if room.encrypted and not encrypted:
        # Plaintext injected into an encrypted room is not from a client we talk to.
        return None
    device_id, trusted = resolve_device(event.sender, getattr(event, "sender_key", None))
    return Incoming(
        room_id=room.room_id,
        event_id=event.event_id,
        sender=event.sender,
        timestamp_ms=event.server_timestamp,
        body=event.body,
        encrypted=encrypted,
        sender_device=device_id,
        device_trusted=trusted if encrypted else False,
        is_direct=room.member_count <= 2,
    )
