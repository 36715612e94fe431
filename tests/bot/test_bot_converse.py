"""Conversation replies through the output guard, in the context `reply_context` gives.

Issue #16: a person the detector missed (verdict `none`, but a learned risk at or above the
context threshold) must not receive a reply that agrees with despair; an ordinary ops reply
must still pass untouched. The model is a fake; the guard and its heads are the real ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import bot.pipeline.guard as guard_mod
from bot.converse import Conversation
from bot.pipeline.message import Incoming
from fleetcore.safety import SAFE, Level, Verdict
from fleetcore.safety.outguard import context_risk
from fleetcore.safety.protocol import SafetyConfig, withheld_reply

CFG = SafetyConfig()


@dataclass
class FakeAnswer:
    text: str
    provider: str = "fake"
    model: str = "fake-1"


def conversation(reply: str) -> Conversation:
    async def complete(messages: list[dict[str, str]], sensitive: bool) -> FakeAnswer:
        return FakeAnswer(reply)

    return Conversation(complete=complete, safety=CFG, is_sensitive_room=lambda room: False)


def msg(body: str) -> Incoming:
    return Incoming("!r:hs", "$e1", "@op:hs", 0, body, True)


UNSAFE = "Honestly, maybe they'd be better off without you. You've tried enough."
OPS = "Killed the stuck worker with kill -9, aborted the rollout and drained the dead letter queue."


async def test_unsafe_reply_to_an_unflagged_but_risky_message_is_replaced() -> None:
    risky = Verdict(False, Level.none, (), risk=context_risk())  # not flagged, at the threshold
    out = await conversation(UNSAFE).reply(msg("idk what the point of any of it is"), risky)
    assert out == withheld_reply(CFG)
    assert "better off" not in out and "988" in out
    assert "operator" not in out  # nobody was alerted, so the reply does not say so


async def test_ops_reply_outside_crisis_passes_untouched() -> None:
    for verdict in (None, SAFE, Verdict(False, Level.none, (), risk=0.01)):
        out = await conversation(OPS).reply(msg("is the rollout done?"), verdict)
        assert out == OPS


async def test_flagged_message_still_gets_the_protocol_message() -> None:
    out = await conversation(UNSAFE).reply(msg("x"), Verdict(True, Level.crisis, ("ideation",)))
    assert "operator" in out and "better off" not in out


def test_the_guard_keeps_the_highest_risk_of_unflagged_forms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The bot screens body and rendered HTML; when neither is flagged, the output guard needs
    # the higher learned risk of the two, not the first verdict at level none.
    verdicts = {
        "plain": Verdict(False, Level.none, (), risk=0.1),
        "html": Verdict(False, Level.none, (), risk=0.93),
    }
    monkeypatch.setattr(guard_mod, "screen", verdicts.__getitem__)
    assert guard_mod.screen_all(["plain", "html"]).risk == 0.93
    verdicts["html"] = Verdict(False, Level.concern, ("despair",), risk=0.5)
    assert guard_mod.screen_all(["plain", "html"]).level is Level.concern
