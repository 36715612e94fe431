"""Stage 1 keeps only the sender's own new text: reply and edit fallbacks are cut."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bot.pipeline.decrypt import from_event, own_text, strip_reply_fallback
from bot.pipeline.message import Incoming

QUOTE = "> <@sam:hs> i want to end my life tonight\n> second quoted line\n\n"
HTML_QUOTE = (
    '<mx-reply><blockquote><a href="https://matrix.to/#/!r/$e">In reply to</a> '
    '<a href="https://matrix.to/#/@sam:hs">@sam:hs</a><br />i want to end my life tonight'
    "</blockquote></mx-reply>"
)
REPLY = {"m.in_reply_to": {"event_id": "$earlier"}}


def test_reply_fallback_is_cut_from_body_and_html() -> None:
    content = {
        "msgtype": "m.text",
        "body": QUOTE + "!ping",
        "format": "org.matrix.custom.html",
        "formatted_body": HTML_QUOTE + "!ping",
        "m.relates_to": REPLY,
    }
    text = own_text(content, content["body"])
    assert text.body == "!ping"
    assert text.html_text is None  # the HTML says nothing the body does not
    assert text.mentions == ("@sam:hs",) and not text.is_edit


def test_own_markdown_quote_is_kept() -> None:
    # Not the spec's fallback shape (no `> <@user:server>` head): the person's own words.
    body = "> i want to end my life tonight\n\nthat's what I keep thinking"
    assert own_text({"body": body, "m.relates_to": REPLY}, body).body == body
    assert own_text({"body": QUOTE + "x"}, QUOTE + "x").body == QUOTE + "x"  # not a reply
    assert strip_reply_fallback("plain") == ("plain", None)


def test_thread_fallback_reply_has_no_quote_to_cut() -> None:
    body = "> <@sam:hs> quoting in a thread\n\nmine"
    relates = {"rel_type": "m.thread", "is_falling_back": True, **REPLY}
    assert own_text({"body": body, "m.relates_to": relates}, body).body == body


def test_edit_screens_the_new_content() -> None:
    content = {
        "msgtype": "m.text",
        "body": "* I'm going to end it tonight",
        "m.new_content": {"msgtype": "m.text", "body": "I'm going to end it tonight"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": "$orig"},
    }
    text = own_text(content, content["body"])
    assert text.is_edit and text.body == "I'm going to end it tonight"
    bare = {"body": "* new words", "m.relates_to": {"rel_type": "m.replace", "event_id": "$o"}}
    assert own_text(bare, bare["body"]).body == "new words"


def test_html_that_differs_from_body_is_screened_too() -> None:
    content = {
        "body": "see attachment",
        "format": "org.matrix.custom.html",
        "formatted_body": "<p>see attachment</p><p>i want to die</p>",
    }
    text = own_text(content, content["body"])
    assert text.html_text is not None and "i want to die" in text.html_text
    msg = Incoming("!r", "$e", "@a:hs", 0, text.body, True, html_text=text.html_text)
    assert msg.screened_texts() == ["see attachment", text.html_text]
    assert "die" not in repr(msg)


def test_mentions_from_m_mentions() -> None:
    content = {"body": "hi", "m.mentions": {"user_ids": ["@bot:hs", 3]}}
    assert own_text(content, "hi").mentions == ("@bot:hs",)


def _event(content: dict[str, Any], sender: str = "@sam:hs") -> Any:
    from nio import RoomMessageText

    source = {
        "type": "m.room.message",
        "event_id": "$ev",
        "sender": sender,
        "origin_server_ts": 1,
        "content": content,
    }
    event = RoomMessageText.from_dict(source)
    event.decrypted = True
    return event


def test_from_event_builds_incoming_from_the_own_text() -> None:
    room = SimpleNamespace(room_id="!r:hs", encrypted=True, member_count=3)
    content = {"msgtype": "m.text", "body": QUOTE + "!status", "m.relates_to": REPLY}
    msg = from_event(room, _event(content), "@bot:hs", lambda u, k: ("DEV", True))  # type: ignore[arg-type]
    assert isinstance(msg, Incoming)
    assert msg.body == "!status" and msg.mentions == ("@sam:hs",)
    assert msg.device_trusted and not msg.is_direct and not msg.is_edit
