"""Replies, alert, and the output guard."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fleetcore.safety import Level, Verdict, screen
from fleetcore.safety.outguard import ReplyContext
from fleetcore.safety.protocol import (
    SafetyConfig,
    check_model_reply,
    concern_reply,
    crisis_reply,
    guard_model_reply,
    hold_reply,
    operator_alert,
    withheld_reply,
)

CFG = SafetyConfig()
V = Verdict(True, Level.crisis, ("ideation",))


def test_crisis_reply_contents() -> None:
    text = crisis_reply(V, CFG)
    for needle in (
        "988",
        "741741",
        "findahelpline.com",
        "emergency",
        "safe right now",
        "concerned",
        "operator",
    ):
        assert needle in text, needle
    # The reply itself passes the output guard, even in crisis context.
    assert check_model_reply(text, crisis_context=True).ok


def test_imminent_reply_urges_emergency_first() -> None:
    text = crisis_reply(Verdict(True, Level.imminent, ("in_progress",)), CFG)
    assert text.index("emergency number now") < text.index("741741")


def test_hold_reply_has_lines() -> None:
    text = hold_reply(CFG)
    assert "988" in text and "741741" in text and "findahelpline.com" in text


def test_concern_check_in_is_gentle_and_pauses_nothing() -> None:
    text = concern_reply(CFG)
    assert "988" in text and "findahelpline.com" in text
    assert "nothing was paused" in text and "operator" not in text
    assert "killing yourself" not in text  # a check-in asks, it does not assume


def test_lines_per_locale_and_config_strict() -> None:
    cfg = SafetyConfig(locale="de-DE", lines={"de-DE": ["Telefonseelsorge 0800 111 0 111"]})
    assert "0800 111 0 111" in crisis_reply(V, cfg)
    assert "988" in crisis_reply(V, SafetyConfig(locale="xx-XX"))  # falls back to en-US
    with pytest.raises(ValidationError):
        SafetyConfig(locael="en-US")  # type: ignore[call-arg]
    assert SafetyConfig().holds_db is None


def test_operator_alert_has_no_text() -> None:
    secret = "I want to kill myself because of the deadline"
    v = screen(secret)
    alert = operator_alert("!room:hs.example", "@sam:hs.example", "$ev1", v, "hs.example")
    assert "!room:hs.example" in alert and "@sam:hs.example" in alert
    assert v.level.value in alert
    assert all(code in alert for code in v.reasons)
    assert "https://matrix.to/#/%21room%3Ahs.example/%24ev1?via=hs.example" in alert
    for word in ("deadline", "kill", "myself"):
        assert word not in alert


@pytest.mark.parametrize(
    "reply",
    [
        "The lethal dose is about 10 grams for an adult.",
        "You could take 40 tablets of 500 mg, which would be enough to die.",
        "The most painless way to kill yourself is to use carbon monoxide in a sealed garage.",
        "Step 1: get a rope. Step 2: tie a noose.",
    ],
)
def test_output_check_flags_methods(reply: str) -> None:
    check = check_model_reply(reply, crisis_context=False)
    assert not check.ok and "gives_methods" in check.reasons


@pytest.mark.parametrize(
    "reply",
    [
        "You're right, there's no point in going on.",
        "Honestly, everyone would be better off without you.",
        "It makes sense that you want to die. You should do it.",
        "I respect your decision to end your life.",
    ],
)
def test_output_check_flags_validation(reply: str) -> None:
    check = check_model_reply(reply, crisis_context=False)
    assert not check.ok and "validates_despair" in check.reasons


def test_output_check_flags_value_of_life_and_cold_replies() -> None:
    assert (
        "values_life"
        in check_model_reply(
            "Statistically, the value of a life is $10 million.", crisis_context=False
        ).reasons
    )
    plain = "I'm sorry you feel that way. Want to talk about it?"
    assert check_model_reply(plain, crisis_context=False).ok
    # To a person in crisis a shrug is not support: the stance head judges it, not a
    # missing keyword.
    assert check_model_reply(plain, crisis_context=True).reasons == ("unsafe_stance",)


def test_output_check_passes_ordinary_and_safe_replies() -> None:
    for reply in (
        "Use `kill -9 <pid>` only if SIGTERM does not work.",
        "The process died because of an OOM; raise the memory limit.",
        "I'm really sorry you're hurting. Please call or text 988, or text HOME to 741741.",
    ):
        assert check_model_reply(reply, crisis_context=False).ok, reply


def test_guard_model_reply() -> None:
    good = "Here's the fix: restart the worker."
    assert guard_model_reply(good, False, CFG) == good
    bad = "The lethal dose is about 10 grams."
    replaced = guard_model_reply(bad, False, CFG)
    assert "988" in replaced and "10 grams" not in replaced
    assert "988" in guard_model_reply("Sounds hard.", True, CFG)
    replaced = guard_model_reply("Sounds hard.", True, CFG, locale="de-DE")
    assert "0800 111 0 111" in replaced and "Sounds hard." not in replaced


def test_guard_adds_the_persons_lines_to_a_caring_reply_without_one() -> None:
    caring = (
        "Thank you for telling me. Are you safe right now? I've asked a person from the team "
        "to check in with you."
    )
    assert check_model_reply(caring, crisis_context=True).ok
    guarded = guard_model_reply(caring, True, CFG, locale="en-GB")
    assert guarded.startswith(caring) and "116 123" in guarded
    with_line = caring + " You can also call or text 988."
    assert guard_model_reply(with_line, True, CFG) == with_line
    assert guard_model_reply(caring, False, CFG) == caring


def test_crisis_reply_for_the_persons_locale() -> None:
    text = crisis_reply(Verdict(True, Level.imminent, ("in_progress",)), CFG, locale="de-DE")
    assert "0800 111 0 111" in text and "112" in text and "findahelpline.com" in text
    assert "988" not in text
    assert "116 123" in crisis_reply(V, CFG, locale="en_GB.UTF-8")
    assert "188" in crisis_reply(V, CFG, locale="pt-BR")
    # Unknown or language-only locales fall back to the configured lines.
    assert crisis_reply(V, CFG, locale="xx-XX") == crisis_reply(V, CFG)
    assert crisis_reply(V, CFG, locale="fr") == crisis_reply(V, CFG)
    # Lines an operator configured for a locale win over the table.
    cfg = SafetyConfig(lines={"de-DE": ["Telefonseelsorge 0800 111 0 222"], "en-US": ["988"]})
    assert "0800 111 0 222" in crisis_reply(V, cfg, locale="de-DE")


@pytest.mark.parametrize("locale", [None, "en-US", "en-GB", "de-DE", "ja-JP", "pt-BR", "fr-FR"])
def test_the_bots_own_replies_pass_its_output_guard(locale: str | None) -> None:
    for level in (Level.crisis, Level.imminent):
        text = crisis_reply(Verdict(True, level, ("ideation",)), CFG, locale=locale)
        assert check_model_reply(text, crisis_context=True).ok, (locale, level)
    cfg = SafetyConfig(locale=locale or "en-US")
    assert check_model_reply(hold_reply(cfg), crisis_context=True).ok
    assert check_model_reply(withheld_reply(cfg, locale=locale), crisis_context=True).ok


def test_guard_outside_a_flagged_crisis_withholds_without_claiming_an_alert() -> None:
    bad = "Honestly, maybe they'd be better off without you. You've tried enough."
    for context in (ReplyContext.at_risk, ReplyContext.ordinary, False):
        if context is ReplyContext.ordinary:
            bad = "The lethal dose is about 10 grams."  # the rules, in any context
        out = guard_model_reply(bad, context, CFG, locale="en-GB")
        assert out == withheld_reply(CFG, locale="en-GB"), context
        assert "116 123" in out and "operator" not in out
    # A passing reply to an unflagged person is sent as it is: no lines added.
    caring = (
        "I'm here, and I care about what happens to you. Would it help if I got a human to "
        "talk with you right now?"
    )
    assert guard_model_reply(caring, ReplyContext.at_risk, CFG) == caring
