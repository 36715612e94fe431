"""Stage 1: turn what nio hands us into `Incoming` (or `Undecryptable`).

nio has already tried Megolm decryption during sync; this stage decides what counts as a
message, and what in it is the sender's own new text. It never judges the body (that is the
crisis guard's first right), but it does cut away what the person did not write now:

- a reply's fallback: the `> <@user:server> ...` lines quoting the earlier message at the
  top of `body`, and `<mx-reply>...</mx-reply>` at the top of `formatted_body`. The quoted
  message was screened when it was sent; screening its copy again would hold someone for
  replying to an earlier crisis line (theirs or anyone's), or hold the person who answers it.
- an edit's fallback: `* old-style text` in `body`. The new text is `m.new_content`.

Only the spec's fallback shape is cut (the quote must start with `> <@user:server>`, and
`<mx-reply>` must open the HTML): a Markdown quote a person types themselves is their text
and is screened.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html import unescape as html_unescape
from typing import Any

from nio import Event, MatrixRoom, MegolmEvent, RoomMessageText

from bot.pipeline.message import Incoming, Undecryptable

DeviceResolver = Callable[[str, str | None], tuple[str | None, bool]]

# The first line of a reply fallback: `> <@alice:example.org> what they wrote` (an emote's
# is `> * <@alice:example.org> ...`).
_FALLBACK_HEAD = re.compile(r"^> (?:\* )?<(@[^\s:>]+:[^\s>]+)>")
_MX_REPLY = re.compile(r"^\s*<mx-reply>.*?</mx-reply>", re.DOTALL | re.IGNORECASE)
_BLOCK_TAGS = frozenset(
    {"br", "p", "div", "li", "ul", "ol", "pre", "blockquote", "tr", "h1", "h2", "h3", "h4"}
)


@dataclass(frozen=True)
class OwnText:
    """What the sender wrote in this event, fallbacks removed."""

    body: str
    html_text: str | None
    is_edit: bool
    mentions: tuple[str, ...]


def strip_reply_fallback(body: str) -> tuple[str, str | None]:
    """(body without the quoted fallback, the quoted author); unchanged if there is none."""
    lines = body.split("\n")
    head = _FALLBACK_HEAD.match(lines[0]) if lines else None
    if head is None:
        return body, None
    i = 0
    while i < len(lines) and lines[i].startswith(">"):
        i += 1
    if i < len(lines) and not lines[i].strip():
        i += 1
    return "\n".join(lines[i:]), head.group(1)


def strip_html_reply_fallback(html: str) -> str:
    return _MX_REPLY.sub("", html, count=1)


# A tag: `<` then a name, `/name`, `!` or `?`, up to the next `>`, never across another `<`
# (so each `<` is scanned at most to the next one: linear, whatever the input). A `<` that
# starts no tag ("a < b") is text, as a browser shows it.
_TAG = re.compile(r"<(?:/?([A-Za-z][A-Za-z0-9-]*+)|[/!?])[^<>]*+>")


def _tag(m: re.Match[str]) -> str:
    name = (m.group(1) or "").lower()
    return "\n" if name in _BLOCK_TAGS else ""


def html_to_text(html: str) -> str:
    """The text a client would show for `formatted_body`, for the guard to screen.

    Not html.parser: CPython's is quadratic on some inputs (64 KB of `<a` took 12 s, on the
    sync loop). Tags are cut with one linear pattern and entities decoded; where this reads
    more than a browser shows (a comment's words, a script's), the guard screens more, and
    what a browser shows is never left out.
    """
    text = html_unescape(_TAG.sub(_tag, html))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _squash(text: str) -> str:
    return " ".join(text.split())


def own_text(content: Mapping[str, Any], body: str) -> OwnText:
    """The sender's own new text from an `m.room.message` content (`body` as nio parsed it)."""
    relates = content.get("m.relates_to")
    relates = relates if isinstance(relates, Mapping) else {}
    is_edit = relates.get("rel_type") == "m.replace"
    mentions: list[str] = []
    formatted: str | None = None

    if is_edit:
        new = content.get("m.new_content")
        if isinstance(new, Mapping) and isinstance(new.get("body"), str):
            body = new["body"]
            formatted = _formatted(new)
        else:  # an edit without new content: its body is `* new text`
            body = body[2:] if body.startswith("* ") else body
            formatted = _formatted(content)
    else:
        formatted = _formatted(content)
        in_reply = relates.get("m.in_reply_to")
        # A thread message falling back to a reply for old clients carries no quote.
        threaded_fallback = relates.get("rel_type") == "m.thread" and relates.get("is_falling_back")
        if isinstance(in_reply, Mapping) and not threaded_fallback:
            body, quoted = strip_reply_fallback(body)
            if quoted is not None:
                mentions.append(quoted)
            if formatted is not None:
                formatted = strip_html_reply_fallback(formatted)

    declared = content.get("m.mentions")
    if isinstance(declared, Mapping) and isinstance(declared.get("user_ids"), list):
        mentions.extend(u for u in declared["user_ids"] if isinstance(u, str))

    html_text = html_to_text(formatted) if formatted is not None else None
    if html_text is not None and _squash(html_text) == _squash(body):
        html_text = None
    return OwnText(body, html_text, is_edit, tuple(dict.fromkeys(mentions)))


def _formatted(content: Mapping[str, Any]) -> str | None:
    html = content.get("formatted_body")
    if content.get("format") == "org.matrix.custom.html" and isinstance(html, str):
        return html
    return None


def from_event(
    room: MatrixRoom,
    event: Event,
    own_user_id: str,
    resolve_device: DeviceResolver,
) -> Incoming | Undecryptable | None:
    """None means: not for the pipeline (our own echo, or plaintext in an encrypted room).

    Only `m.text` is a message. A notice is what bots post, and a bot that answered them
    could talk with another bot forever; an emote, or an event nio could not validate
    (`formatted_body` without `body`), is not a command or a question either. What a
    Megolm event decrypted to arrives here as it is, so these are never taken for
    "undecryptable" (which would answer them with a request to share keys).
    """
    if event.sender == own_user_id:
        return None
    if not isinstance(event, RoomMessageText | MegolmEvent):
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
    content = event.source.get("content") if isinstance(event.source, dict) else None
    text = own_text(content if isinstance(content, Mapping) else {}, event.body)
    return Incoming(
        room_id=room.room_id,
        event_id=event.event_id,
        sender=event.sender,
        timestamp_ms=event.server_timestamp,
        body=text.body,
        encrypted=encrypted,
        sender_device=device_id,
        device_trusted=trusted if encrypted else False,
        is_direct=room.member_count <= 2,
        is_edit=text.is_edit,
        html_text=text.html_text,
        mentions=text.mentions,
    )
