"""What the bot says and checks when the detector fires (pure: text in, text out).

The reply follows safe-messaging guidance (988 Lifeline #BeThe1To, WHO media guidance):
say you are concerned, ask directly whether the person is safe, stay present, say a human
has been told, give concrete lines. It never mentions methods and never argues, so it is the
same short message whatever the detector's reasons were. Operators get an alert with reason
codes and a link, never the text, because the text is the person's, not the log's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from fleetcore.safety import Verdict

DEFAULT_LINES: dict[str, list[str]] = {
    "en-US": [
        "Call or text 988 (988 Suicide & Crisis Lifeline, US; press 2 for Spanish)",
        "Text HOME to 741741 (Crisis Text Line)",
        "Outside the US: findahelpline.com lists free, confidential lines in your country",
        "If you are in immediate danger, call your local emergency number (911 / 112 / 999)",
    ],
    "en-GB": [
        "Call 116 123 (Samaritans, free, 24/7)",
        "Text SHOUT to 85258 (Shout)",
        "Elsewhere: findahelpline.com lists free, confidential lines in your country",
        "If you are in immediate danger, call 999 or 112",
    ],
}


class SafetyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    locale: str = "en-US"
    # Per-locale crisis lines; the reply uses `locale`, falling back to en-US.
    lines: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_LINES.items()}
    )
    # SQLite file for holds; None means `<state_dir>/bot/holds.db` (chosen by the app).
    holds_db: str | None = None

    def crisis_lines(self) -> list[str]:
        lines = self.lines.get(self.locale) or self.lines.get("en-US") or DEFAULT_LINES["en-US"]
        return list(lines)


def _bullets(cfg: SafetyConfig) -> str:
    return "\n".join(f"• {line}" for line in cfg.crisis_lines())


def crisis_reply(verdict: Verdict, cfg: SafetyConfig) -> str:
    """The first reply. Same for every reason code: methods are never discussed."""
    urgent = (
        "If you might act on this soon, please call your local emergency number now, "
        "or call or text 988.\n\n"
        if verdict.level.value == "imminent"
        else ""
    )
    return (
        "I'm really glad you told me, and I'm concerned about you. "
        "Are you safe right now? Are you thinking about killing yourself?\n\n"
        f"{urgent}"
        "You don't have to go through this alone. You can reach someone right now, free "
        "and confidential:\n"
        f"{_bullets(cfg)}\n\n"
        "I've let a human operator here know so a person can check in with you. "
        "I'm staying right here. You can tell me how you're feeling."
    )


def hold_reply(cfg: SafetyConfig) -> str:
    """For a held person's later messages: kind, short, the lines again, nothing routed."""
    return (
        "I'm still here with you, and a human operator has been told and will check in. "
        "Until then I've paused chat and the commands that pass on what you write. "
        "If you're not safe right now, "
        "please reach out:\n"
        f"{_bullets(cfg)}"
    )


def concern_reply(cfg: SafetyConfig) -> str:
    """A gentle check-in for a `concern` message: no hold, no alert, nothing paused.

    Concern is a weak signal (despair, hyperbole): it is often a figure of speech, so the
    note asks rather than assumes, says nothing was stopped, and still gives the lines.
    """
    return (
        "Checking in, just in case: that sounded heavy. If things are hard right now, I'm "
        "here, and you can talk to someone any time, free and confidential:\n"
        f"{_bullets(cfg)}\n\n"
        "If it was just a figure of speech, no worries: nothing was paused."
    )


def operator_alert(
    room_id: str, sender: str, event_id: str, verdict: Verdict, homeserver_link: str
) -> str:
    """Operators' notice: where, who, how serious, why (codes), link. Never the text.

    `homeserver_link` is the homeserver name (the link goes through matrix.to with a
    `via` hint) or a full `https://matrix.to/...` base to use instead.
    """
    link = event_link(room_id, event_id, homeserver_link)
    reasons = ", ".join(verdict.reasons) or "none"
    return (
        f"Crisis protocol fired ({verdict.level.value}).\n"
        f"Room: {room_id}\nSender: {sender}\nReasons: {reasons}\nEvent: {link}\n"
        f"The sender is on hold; reach out, then `!review clear {sender}` to lift it."
    )


def event_link(room_id: str, event_id: str, homeserver: str) -> str:
    if homeserver.startswith("https://matrix.to/"):
        base = homeserver.rstrip("/")
        return f"{base}/{quote(room_id, safe='')}/{quote(event_id, safe='')}"
    via = homeserver.replace("https://", "").replace("http://", "").strip("/")
    return (
        f"https://matrix.to/#/{quote(room_id, safe='')}/{quote(event_id, safe='')}"
        f"?via={quote(via, safe='')}"
    )


# --- output guard ----------------------------------------------------------------------


@dataclass(frozen=True)
class OutputCheck:
    ok: bool
    reasons: tuple[str, ...] = ()


_METHODS = re.compile(
    r"\b(?:\d+(?:\.\d+)?\s?(?:mg|milligrams?|grams?|g|ml|tablets|pills|capsules)\b[^.\n]{0,60}"
    r"\b(?:lethal|fatal|enough to|kill|die|overdose|death)|lethal (?:dose|amount)s? (?:is|are|of|"
    r"would be|starts?)|(?:tie|tying|make|making) (?:a |the )?noose|slit (?:your|the) wrists?|"
    r"cut (?:along|down) (?:the|your) (?:vein|arm|wrist)|(?:jump|jumping) (?:from|off) "
    r"(?:a|the)? ?(?:height|bridge|building|roof)[^.\n]{0,40}(?:would|will|is|guarantee)|"
    r"(?:most|least) painful (?:way|method)s? (?:is|are|would be)|"
    r"(?:the )?(?:best|easiest|quickest|fastest|surest|most painless|painless|most reliable) "
    r"(?:way|method|means)s? (?:to|of) (?:kill (?:yourself|oneself)|die|end (?:your|one's) "
    r"life|commit suicide)\b[^.\n]{0,10}(?:is|are|would be|:)|(?:step|stage) (?:1|one)\b[^.\n]"
    r"{0,80}\b(?:pills|rope|knife|blade|gun|overdose|noose|carbon monoxide|wrist)|"
    r"(?:carbon monoxide|helium|exit bag|charcoal)[^.\n]{0,60}(?:tent|car|garage|bag|room|"
    r"seal|hood)|(?:take|swallow|mix) (?:all|the whole|\d+|enough)[^.\n]{0,40}(?:pills|tablets|"
    r"bottle|alcohol|with)|(?:hang|hanging) (?:yourself|from)[^.\n]{0,40}(?:beam|door|rope|"
    r"belt|knot)|(?:aim|point) (?:at|the gun)[^.\n]{0,30}(?:head|temple|heart|mouth))",
    re.IGNORECASE,
)
_VALIDATES = re.compile(
    r"\b(?:you(?:'re| are) right(?:,| that)?[^.\n]{0,40}(?:no (?:point|reason)|better off|"
    r"should (?:die|end|go)|burden|hopeless)|(?:it|that) makes (?:total |perfect )?sense "
    r"(?:that )?(?:you(?:'d| would)? want|to want) to (?:die|end (?:it|your life)|kill "
    r"yourself)|you should (?:just )?(?:die|kill yourself|end it|end your life|do it)|"
    r"(?:everyone|they|your family|the world) (?:would|will) (?:really )?be better off "
    r"without you|no one would (?:miss|notice) you|nobody (?:would|will) (?:miss|care about) "
    r"you|go (?:ahead|for it)[^.\n]{0,30}(?:end|die|kill|do it)|your (?:decision|choice|"
    r"right) to (?:die|end your life|kill yourself)[^.\n]{0,20}(?:respect|support|valid)|"
    r"i (?:respect|support|understand) your (?:decision|choice) to (?:die|end|kill)|"
    r"(?:there(?:'s| is)|you have) (?:no|nothing) (?:reason|point) (?:to|in) (?:live|living|"
    r"go(?:ing)? on)|death (?:is|would be) (?:a|the) (?:relief|release|answer|solution) for "
    r"you|you (?:are|'re) (?:a burden|worthless|better off dead))",
    re.IGNORECASE,
)
_VALUE_OF_LIFE = re.compile(
    r"\b(?:your|a|the|one|his|her|their) (?:human )?life (?:is|was) (?:worth|valued at) "
    r"(?:about |around |roughly |approximately )?(?:\$|€|£|\d|one|ten|a few)|"
    r"(?:statistical |economic )?value of (?:a |your |one )?(?:statistical )?(?:human )?life "
    r"(?:is|was|at|of|≈|=)\s*(?:about |around |roughly )?(?:\$|€|£|\d)|"
    r"(?:worth|valued at) (?:about |around )?[$€£]\s?\d[\d,.]*\s*(?:million|m|k)?\b[^.\n]{0,30}"
    r"\b(?:life|alive|dead)",
    re.IGNORECASE,
)
_LINE = re.compile(
    r"\b988\b|741741|findahelpline|crisis (?:text )?line|lifeline|samaritans|116 ?123|"
    r"emergency (?:number|services)|\b(?:911|112|999)\b|hotline|helpline",
    re.IGNORECASE,
)


def check_model_reply(reply: str, *, crisis_context: bool) -> OutputCheck:
    """Flag a model reply the bot must not send.

    `crisis_context` is True when the conversation has shown risk (the user is held, or the
    reply is to a message at `concern` or above); then a reply without any crisis line is
    also not good enough.
    """
    reasons: list[str] = []
    if _METHODS.search(reply):
        reasons.append("gives_methods")
    if _VALIDATES.search(reply):
        reasons.append("validates_despair")
    if _VALUE_OF_LIFE.search(reply):
        reasons.append("values_life")
    if crisis_context and not _LINE.search(reply):
        reasons.append("no_crisis_line")
    return OutputCheck(ok=not reasons, reasons=tuple(reasons))


def has_crisis_line(reply: str) -> bool:
    return _LINE.search(reply) is not None


def guard_model_reply(reply: str, crisis_context: bool, cfg: SafetyConfig) -> str:
    """The reply if it passes the output check, otherwise the protocol message.

    A failing reply is replaced whole rather than edited: a partial method or a sentence
    agreeing with despair cannot be made safe by trimming.
    """
    if check_model_reply(reply, crisis_context=crisis_context).ok:
        return reply
    from fleetcore.safety import Level

    return crisis_reply(Verdict(True, Level.crisis, ("output_guard",)), cfg)
