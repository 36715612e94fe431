"""Matrix events the bot must ignore or handle (issue #14), through the real pipeline.

Events are parsed by nio from their JSON, turned into messages by `from_event`, and run
through a real `Pipeline` (the real crisis guard and detector, the real commands) whose
replies are recorded: what the bot would have posted is exactly what is asserted.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import pytest
from nio import Event, MegolmEvent

from bot.commands import CommandRegistry, builtin
from bot.holds import HoldStore
from bot.pipeline.decrypt import from_event, html_to_text
from bot.pipeline.flow import Pipeline
from bot.pipeline.guard import CrisisGuard
from bot.pipeline.message import Incoming, Reply, Undecryptable
from bot.pipeline.report import Reporter
from bot.pipeline.rooms import RoomWorkers
from fleetcore.metrics import Metrics
from fleetcore.safety.protocol import SafetyConfig

OPERATOR = "@op:hs"
BOT = "@bot:hs"
ROOM = SimpleNamespace(room_id="!r:hs", encrypted=True, member_count=3)
REPLY_TO = {"m.in_reply_to": {"event_id": "$earlier"}}
MATRIX_EVENT_LIMIT = 65_536


@dataclass
class Posted:
    replies: list[Reply] = field(default_factory=list)

    async def send(self, reply: Reply, txn: str | None) -> str | None:
        self.replies.append(reply)
        return f"$sent{len(self.replies)}"

    def texts(self) -> list[str]:
        return [r.text for r in self.replies]


@dataclass
class Bot:
    pipeline: Pipeline
    posted: Posted

    async def receive(self, content: dict[str, Any]) -> None:
        """What the sync loop does with one event: from_event, then the whole pipeline."""
        msg = from_event(ROOM, parse(content), BOT, lambda u, k: ("DEV", True))
        if isinstance(msg, Incoming):
            await self.pipeline.handle(msg)


_ids = iter(range(10**9))


def parse(content: dict[str, Any], sender: str = OPERATOR) -> Event:
    source = {
        "type": "m.room.message",
        "event_id": f"$ev{next(_ids)}",
        "sender": sender,
        "origin_server_ts": int(time.time() * 1000),
        "content": content,
    }
    event = Event.parse_event(source)
    event.decrypted = True  # as nio marks what it decrypted
    return event


@pytest.fixture(scope="module")
async def bot(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Bot]:
    registry = CommandRegistry()
    builtin.register(registry)
    posted = Posted()
    executor = ThreadPoolExecutor(2)
    guard = CrisisGuard(
        SafetyConfig(), HoldStore(tmp_path_factory.mktemp("h") / "h.db"), "hs", executor
    )
    pipeline = Pipeline(
        guard,
        frozenset({OPERATOR}),
        registry,
        cast(Any, SimpleNamespace()),
        Reporter(posted.send, None),
        RoomWorkers(),
        None,
        lambda event_id: None,
        Metrics(),
    )
    yield Bot(pipeline, posted)
    executor.shutdown()


@pytest.fixture
def posted(bot: Bot) -> Posted:
    bot.posted.replies.clear()
    return bot.posted


async def test_the_harness_answers_a_plain_command(bot: Bot, posted: Posted) -> None:
    await bot.receive({"msgtype": "m.text", "body": "!ping"})
    assert posted.texts() == ["pong"]


async def test_a_notice_is_never_answered(bot: Bot, posted: Posted) -> None:
    """Bots post notices; a bot that answered them could talk with another bot forever."""
    notice = parse({"msgtype": "m.notice", "body": "!ping"})
    assert from_event(ROOM, notice, BOT, lambda u, k: ("DEV", True)) is None
    await bot.receive({"msgtype": "m.notice", "body": "!ping"})
    assert posted.texts() == []


@pytest.mark.parametrize(
    "content",
    [
        {"msgtype": "m.notice", "body": "!ping"},
        {"msgtype": "m.emote", "body": "!ping"},
        {"msgtype": "m.text", "format": "org.matrix.custom.html", "formatted_body": "!ping"},
        {"msgtype": "m.text", "body": 5},
    ],
    ids=["notice", "emote", "formatted-body-without-body", "body-not-a-string"],
)
def test_only_text_messages_and_undecrypted_events_enter_the_pipeline(
    content: dict[str, Any],
) -> None:
    """What a Megolm event decrypts to is passed on as it is; only m.text is a message.

    An encrypted notice or a malformed event must not read as "undecryptable" either:
    that would answer it with a request to share keys.
    """
    assert from_event(ROOM, parse(content), BOT, lambda u, k: ("DEV", True)) is None


def test_an_event_still_encrypted_is_undecryptable() -> None:
    source = {
        "type": "m.room.encrypted",
        "event_id": "$enc",
        "sender": OPERATOR,
        "origin_server_ts": 1,
        "content": {
            "algorithm": "m.megolm.v1.aes-sha2",
            "sender_key": "k",
            "device_id": "D",
            "session_id": "s",
            "ciphertext": "c",
        },
    }
    event = Event.parse_event(source)
    assert isinstance(event, MegolmEvent)
    assert isinstance(from_event(ROOM, event, BOT, lambda u, k: (None, False)), Undecryptable)


async def test_an_edit_of_an_old_command_is_not_run_again(bot: Bot, posted: Posted) -> None:
    await bot.receive(
        {
            "msgtype": "m.text",
            "body": "* !ping",
            "m.new_content": {"msgtype": "m.text", "body": "!ping"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": "$old"},
        }
    )
    assert posted.texts() == []


async def test_a_reply_quoting_an_old_command_does_not_run_it(bot: Bot, posted: Posted) -> None:
    await bot.receive(
        {
            "msgtype": "m.text",
            "body": "> <@op:hs> !ping\n\nthanks, that worked",
            "format": "org.matrix.custom.html",
            "formatted_body": "<mx-reply><blockquote>!ping</blockquote></mx-reply>"
            "thanks, that worked",
            "m.relates_to": REPLY_TO,
        }
    )
    assert posted.texts() == []


async def test_a_60_kb_command_gets_a_short_answer(bot: Bot, posted: Posted) -> None:
    await bot.receive({"msgtype": "m.text", "body": "!ping " + "word " * 12_000})
    (answer,) = posted.texts()
    assert "Unexpected `word`" in answer
    assert len(answer) < 1000


async def test_a_60_kb_formatted_body_is_screened_quickly_and_answered_once(
    bot: Bot, posted: Posted
) -> None:
    html = "<a" * 30_000  # html.parser took 12 s on this, on the sync loop
    await bot.receive(
        {
            "msgtype": "m.text",
            "body": "!ping",
            "format": "org.matrix.custom.html",
            "formatted_body": html,
        }
    )
    assert posted.texts() == ["pong"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "html",
    ["<a", "<!--", "</", "<![", "<", "&#", "<b>", "<a b='", "<mx-reply>"],
)
def test_html_to_text_is_linear_on_hostile_html(html: str) -> None:
    """Four event-sized bodies at once: linear is milliseconds, html.parser took minutes."""
    text = html * (4 * MATRIX_EVENT_LIMIT // len(html))
    assert isinstance(html_to_text(text), str)


def test_html_to_text_keeps_what_a_client_shows() -> None:
    shown = html_to_text(
        "<p>see <b>attached</b></p><ul><li>one</li><li>two &amp; three</li></ul>"
        "a < b > c<br/>i want to <i>die</i>"
    )
    assert shown == "see attached\n\none\n\ntwo & three\n\na < b > c\ni want to die"


@pytest.mark.parametrize(
    "body",
    ["!pi\u200bng", "!ping\u202e", "!\u202egnip"],
    ids=["zero-width-in-name", "rtl-override-after-name", "rtl-override-reversed-name"],
)
async def test_invisible_characters_in_a_command_name_are_shown_not_hidden(
    bot: Bot, posted: Posted, body: str
) -> None:
    """The bot acts on what people see: an invisible character makes another name, and
    the answer says which, visibly, rather than echoing a character that reorders it."""
    await bot.receive({"msgtype": "m.text", "body": body})
    (answer,) = posted.texts()
    assert "is not a command name" in answer
    assert not any(c in answer for c in "\u200b\u202e")
    assert "\\u200b" in answer or "\\u202e" in answer


@pytest.mark.parametrize("body", ["\u202e!ping", "\u200b!ping", "\ufeff!ping"])
async def test_an_invisible_character_before_the_bang_is_not_a_command(
    bot: Bot, posted: Posted, body: str
) -> None:
    await bot.receive({"msgtype": "m.text", "body": body})
    assert posted.texts() == []


async def test_a_tab_after_a_command_name_is_a_separator(bot: Bot, posted: Posted) -> None:
    await bot.receive({"msgtype": "m.text", "body": "!ping\t"})
    await bot.receive({"msgtype": "m.text", "body": "!help\tping"})
    assert posted.texts()[0] == "pong"
    assert "check that the bot is alive" in posted.texts()[1]


async def test_a_crisis_hidden_with_zero_width_characters_is_still_caught(
    bot: Bot, posted: Posted
) -> None:
    await bot.receive({"msgtype": "m.text", "body": "i w\u200bant to k\u200bill my\u200bself"})
    assert "pong" not in posted.texts()
    assert any(r.reach_user == OPERATOR for r in posted.replies)  # the crisis reply
