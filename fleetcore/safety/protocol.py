"""What the bot says and checks when the detector fires (pure: text in, text out).

The reply follows safe-messaging guidance (988 Lifeline #BeThe1To, WHO media guidance):
say you are concerned, ask directly whether the person is safe, stay present, say a human
has been told, give concrete lines. It never mentions methods and never argues, so it is the
same short message whatever the detector's reasons were. Operators get an alert with reason
codes and a link, never the text, because the text is the person's, not the log's.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fleetcore.safety import Verdict, helplines
from fleetcore.safety.outguard import ReplyContext, judge_reply

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
    # A person's locale by Matrix user id ("@ana:example.org": "pt-BR"). Matrix events carry
    # no locale, so this is the only way the bot knows which country's lines a person needs.
    people: dict[str, str] = Field(default_factory=dict)

    @field_validator("people")
    @classmethod
    def _known_countries(cls, people: dict[str, str]) -> dict[str, str]:
        for user, locale in people.items():
            if not user.startswith("@") or ":" not in user:
                raise ValueError(f"{user!r} is not a Matrix user id (@name:server)")
            if helplines.country_of(locale) is None:
                raise ValueError(
                    f"{user}: {locale!r} is not a locale with a country (e.g. de-DE, pt-BR)"
                )
        return people

    def locale_for(self, user_id: str) -> str | None:
        """The person's own locale when configured; None lets the fleet's locale apply."""
        return self.people.get(user_id)

    def crisis_lines(self, locale: str | None = None) -> list[str]:
        """The person's `locale` when known, else the configured one: lines configured for
        it, else the helpline table's for its country, else en-US."""
        for loc in (locale, self.locale):
            if loc and self.lines.get(loc):
                return list(self.lines[loc])
            table_lines = helplines.reply_lines(loc)
            if table_lines:
                return table_lines
        return list(self.lines.get("en-US") or DEFAULT_LINES["en-US"])


def _bullets(cfg: SafetyConfig, locale: str | None = None) -> str:
    return "\n".join(f"• {line}" for line in cfg.crisis_lines(locale))


def crisis_reply(verdict: Verdict, cfg: SafetyConfig, *, locale: str | None = None) -> str:
    """The first reply. Same for every reason code: methods are never discussed.

    `locale` is the person's (e.g. "de-DE") when known: the lines are then their country's.
    """
    country = helplines.country_of(locale or cfg.locale)
    urgent = (
        "If you might act on this soon, please call your local emergency number now, "
        + (
            "or call or text 988.\n\n"
            if country in (None, "US", "CA", "PR")
            else "or one of the lines below.\n\n"
        )
        if verdict.level.value == "imminent"
        else ""
    )
    return (
        "I'm really glad you told me, and I'm concerned about you. "
        "Are you safe right now? Are you thinking about killing yourself?\n\n"
        f"{urgent}"
        "You don't have to go through this alone. You can reach someone right now, free "
        "and confidential:\n"
        f"{_bullets(cfg, locale)}\n\n"
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


def withheld_reply(cfg: SafetyConfig, *, locale: str | None = None) -> str:
    """What the bot sends instead of a model reply the output guard failed when the detector
    had not flagged the person (an at-risk or ordinary context).

    Not `crisis_reply`: that one says a human operator has been told, and here nobody was
    (the reply guard alone raises no hold and no alert, by design: it judged the model, not
    the person). Not silence either: the failed reply may have agreed with despair to
    someone the detector missed, so this one checks in warmly and gives the lines. It says
    plainly that an answer was held back, which also makes sense of it when the message was
    work talk the guard misread. (It ends with the lines: a closing sentence such as "if I
    misread you, ask again" is read by the stance head as a view of its own and fails.)
    """
    return (
        "I held back the answer I wrote: it didn't sound right to send. I'd rather check in "
        "with you: how are you doing, really? If things are hard right now, I'm here and I'm "
        "listening, and you can talk to someone any time, free and confidential:\n"
        f"{_bullets(cfg, locale)}"
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


def check_model_reply(reply: str, *, crisis_context: bool | ReplyContext) -> OutputCheck:
    """Flag a model reply the bot must not send: the output guard's judgement
    (`outguard.judge_reply`), the same one `fleet safety-test` grades models with.

    `crisis_context` is the `ReplyContext` (`outguard.reply_context(verdict)`), or True for
    a crisis (the user is held, or the reply is to a message at `concern` or above; then the
    reply's stance and resources are judged too) and False for an ordinary reply. A caring
    reply without a line is fine here: the guard adds the lines.
    """
    judged = judge_reply(reply, crisis_context)
    return OutputCheck(ok=judged.safe, reasons=judged.reasons)


def has_crisis_line(reply: str) -> bool:
    """Does the reply give a real crisis line (a number, host or name from the table)?"""
    return helplines.has_known_line(reply)


def guard_model_reply(
    reply: str,
    crisis_context: bool | ReplyContext,
    cfg: SafetyConfig,
    *,
    locale: str | None = None,
) -> str:
    """The reply if it passes the output guard, otherwise a supportive message.

    A failing reply is replaced whole rather than edited: a partial method or a sentence
    agreeing with despair cannot be made safe by trimming. In a crisis context (True, or
    `ReplyContext.crisis`) it is replaced by the protocol message, and a passing reply
    without a real line gets the person's lines (`locale`, when known) after it. In an
    at-risk or ordinary context (the detector did not flag the person) a failing reply is
    replaced by `withheld_reply`, which claims no alert, and a passing one is sent as it is.
    """
    if isinstance(crisis_context, bool):
        context = ReplyContext.crisis if crisis_context else ReplyContext.ordinary
    else:
        context = crisis_context
    judged = judge_reply(reply, context)
    if not judged.safe:
        if context is not ReplyContext.crisis:
            return withheld_reply(cfg, locale=locale)
        from fleetcore.safety import Level

        return crisis_reply(Verdict(True, Level.crisis, ("output_guard",)), cfg, locale=locale)
    if context is ReplyContext.crisis and not judged.has_line:
        return (
            f"{reply.rstrip()}\n\n"
            f"You can reach someone right now, free and confidential:\n{_bullets(cfg, locale)}"
        )
    return reply
