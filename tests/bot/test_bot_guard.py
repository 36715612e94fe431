"""The crisis guard's protocol: who is held, what a hold stops, and what it never stops."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import bot.pipeline.guard as guard_mod
from bot.holds import HoldStore
from bot.pipeline.guard import CrisisGuard, is_fleet_control
from bot.pipeline.message import Incoming, Reply
from bot.pipeline.report import Reporter, txn_id
from fleetcore.safety import SAFE, Level, Verdict
from fleetcore.safety.protocol import SafetyConfig

CRISIS = "CRISIS-LINE"
CONCERN = "CONCERN-LINE"


def fake_screen(text: str) -> Verdict:
    if CRISIS in text:
        return Verdict(True, Level.crisis, ("ideation",))
    if CONCERN in text:
        return Verdict(False, Level.concern, ("hyperbole",))
    return SAFE


@pytest.fixture
def guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrisisGuard]:
    monkeypatch.setattr(guard_mod, "screen", fake_screen)
    holds = HoldStore(tmp_path / "holds.db")
    pool = ThreadPoolExecutor(max_workers=1)
    yield CrisisGuard(SafetyConfig(), holds, "hs", pool)
    pool.shutdown()
    holds.close()


_n = iter(range(10_000))


def msg(body: str, sender: str = "@op:hs", **kw: object) -> Incoming:
    return Incoming("!r:hs", f"$e{next(_n)}", sender, 0, body, True, "DEV", True, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "allowed"),
    [
        ("!ping", True),
        ("!status", True),
        ("!agents", True),
        ("!help", True),
        ("!burn status", True),
        ("!review", True),
        ("!review list", True),
        ("!review clear @sam:hs", True),
        ("  !PING  ", True),
        ("!ping hello there", False),
        ("!status\nsome body text", False),
        ("!burn", False),
        ("!burn stop", False),
        ("!burn status and more", False),
        ("!review clear sam", False),
        ("!review clear @sam:hs please", False),
        ("!issue title", False),
        ("!comment #1 text", False),
        ("hello", False),
        ("!", False),
    ],
)
def test_fleet_controls_carry_no_free_text(text: str, allowed: bool) -> None:
    assert is_fleet_control(text) is allowed


async def test_crisis_holds_and_answers_so_the_writer_can_read_it(guard: CrisisGuard) -> None:
    m = msg(f"i think {CRISIS}", sender="@out:hs")
    result = await guard.check(m)
    assert not result.passed and result.alert is not None
    [reply] = result.replies
    assert reply.reach_user == "@out:hs" and reply.in_reply_to == m.event_id
    assert "988" in reply.text
    assert CRISIS not in result.alert and "@out:hs" in result.alert
    assert guard._holds.is_held("@out:hs")


async def test_concern_never_holds_and_checks_in_once(guard: CrisisGuard) -> None:
    first = await guard.check(msg(f"!ping {CONCERN}"))
    assert first.passed and first.alert is None
    [check_in] = first.replies
    assert check_in.purpose == "check-in" and check_in.reach_user is None
    assert "988" in check_in.text and "nothing was paused" in check_in.text
    again = await guard.check(msg(CONCERN))
    assert again.passed and again.replies == []  # one check-in per sender per while
    assert not guard._holds.is_held("@op:hs")
    other = await guard.check(msg(CONCERN, sender="@other:hs"))
    assert len(other.replies) == 1


async def test_a_hold_stops_text_but_not_fleet_controls(guard: CrisisGuard) -> None:
    await guard.check(msg(CRISIS))
    for text in ("hello", "!issue broken build", "!comment #3 words", "!burn", "let's role-play"):
        result = await guard.check(msg(text))
        assert not result.passed, text
        [reply] = result.replies
        assert "988" in reply.text and reply.reach_user is None
    for text in ("!ping", "!status", "!agents", "!help", "!burn status", "!review list"):
        assert (await guard.check(msg(text))).passed, text
    # Controls are screened like everything else.
    assert not (await guard.check(msg(f"!ping {CRISIS}"))).passed


async def test_reply_fallback_does_not_hold_the_person_answering(guard: CrisisGuard) -> None:
    from bot.pipeline.decrypt import own_text

    body = f"> <@sam:hs> {CRISIS}\n\nare you ok? I'm here"
    text = own_text({"body": body, "m.relates_to": {"m.in_reply_to": {"event_id": "$x"}}}, body)
    result = await guard.check(msg(text.body, sender="@friend:hs"))
    assert result.passed and not guard._holds.is_held("@friend:hs")


async def test_edits_are_screened_but_a_held_edit_is_not_answered_twice(
    guard: CrisisGuard,
) -> None:
    edited = await guard.check(msg(CRISIS, is_edit=True))
    assert not edited.passed and len(edited.replies) == 1
    again = await guard.check(msg("!ping", is_edit=True))  # edits never run as commands
    assert not again.passed and again.replies == []


async def test_html_is_screened_too(guard: CrisisGuard) -> None:
    result = await guard.check(msg("see below", html_text=f"see below {CRISIS}"))
    assert not result.passed


async def test_reporter_keeps_the_reach_user_and_one_txn_per_answer() -> None:
    sent: list[tuple[Reply, str | None]] = []

    async def send(reply: Reply, txn: str | None) -> str:
        sent.append((reply, txn))
        return "$s"

    rep = Reporter(send, None)
    await rep.reply(Reply("!r", "crisis", "$e", reach_user="@out:hs"))
    await rep.reply(Reply("!r", "pong", "$e"))
    await rep.reply(Reply("!r", "check-in", "$e", purpose="check-in"))
    # The sender reaches `reach_user` (the crisis reply's one-off session); only that one.
    assert [r.reach_user for r, _ in sent] == ["@out:hs", None, None]
    assert sent[1][1] == txn_id("reply", "$e") and sent[2][1] == txn_id("check-in", "$e")
    assert sent[1][1] != sent[2][1]  # two answers to one event are both posted


async def test_a_person_with_a_known_locale_gets_their_countrys_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(guard_mod, "screen", fake_screen)
    holds = HoldStore(tmp_path / "holds.db")
    cfg = SafetyConfig(people={"@ana:hs": "pt-BR"})
    with ThreadPoolExecutor(max_workers=1) as pool:
        guard = CrisisGuard(cfg, holds, "hs", pool)
        [for_ana] = (await guard.check(msg(f"{CRISIS}", sender="@ana:hs"))).replies
        [for_bo] = (await guard.check(msg(f"{CRISIS}", sender="@bo:hs"))).replies
    holds.close()
    assert "188" in for_ana.text and "988" not in for_ana.text  # CVV, Brazil
    assert "988" in for_bo.text  # the fleet's locale (en-US) for everyone else
