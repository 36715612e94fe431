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
    # The new text of an edit (`m.replace`) stands in `body`; an edit is screened by the
    # guard but never routed again as a command or chat.
    is_edit: bool = False
    # The rendered text of `formatted_body` (reply fallback removed), when it says something
    # `body` does not: a client shows it, so the guard screens it too.
    html_text: str | None = field(default=None, repr=False)
    # Users the message addresses: `m.mentions`, and the author of the event it replies to.
    mentions: tuple[str, ...] = ()

    def screened_texts(self) -> list[str]:
        """What the guard screens: the person's own new text, in every form a client shows."""
        return [self.body] if self.html_text is None else [self.body, self.html_text]


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
    # Which answer to `in_reply_to` this is: one transaction id per (purpose, event), so two
    # different answers to one event (a check-in and a command's reply) are both posted.
    purpose: str = "reply"
    # The crisis reply only: deliver to this user's devices whatever the trust policy says
    # of them (`Sender.reply`, `MatrixShell.one_off`). Every other reply keeps the policy.
    reach_user: str | None = None
