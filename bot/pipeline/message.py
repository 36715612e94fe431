"""What flows through the pipeline.

The body is carried but hidden from `repr`, so a stray log line or traceback that prints a
message object never leaks what a person wrote; only the crisis guard reads it first.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Incoming:
    room_id: str
    event_id: str
    sender: str
    timestamp_ms: int
    body: str = field(repr=False)
    encrypted: bool
    # The sender's device as nio resolved it from the Megolm session; None when unknown.
    sender_device: str | None = None
    # Whether the sending device is one the trust policy accepts.
    device_trusted: bool = False
    is_direct: bool = False


@dataclass(frozen=True)
class Undecryptable:
    """A Megolm event we hold no key for: the sender gets a notice, never silence."""

    room_id: str
    event_id: str
    sender: str
    timestamp_ms: int
    session_id: str


@dataclass(frozen=True)
class Reply:
    """A notice the bot sends, as a reply to `in_reply_to` when set."""

    room_id: str
    text: str = field(repr=False)
    in_reply_to: str | None = None
    html: str | None = field(default=None, repr=False)
