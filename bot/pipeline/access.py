"""Stage 3: who may make the fleet do things.

Runs after the crisis guard, so a person in crisis is answered whoever they are; only then
do we ask whether they may command the fleet.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.pipeline.message import Incoming


class Access(StrEnum):
    ALLOWED = "allowed"
    NOT_OPERATOR = "not_operator"
    UNTRUSTED_DEVICE = "untrusted_device"


@dataclass(frozen=True)
class AccessDecision:
    access: Access

    @property
    def allowed(self) -> bool:
        return self.access is Access.ALLOWED


def authorize(msg: Incoming, operators: frozenset[str]) -> AccessDecision:
    if msg.sender not in operators:
        return AccessDecision(Access.NOT_OPERATOR)
    if msg.encrypted and not msg.device_trusted:
        return AccessDecision(Access.UNTRUSTED_DEVICE)
    return AccessDecision(Access.ALLOWED)


def refusal(decision: AccessDecision) -> str:
    if decision.access is Access.NOT_OPERATOR:
        return "Sorry, I only take commands from this fleet's operators. Nothing was run."
    return (
        "I can't accept commands from this device: it is not verified by your cross-signing "
        "identity. Verify it in Element (or ask an operator), then try again. Nothing was run."
    )
