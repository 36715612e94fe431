"""Stage 2: the crisis guard. The first code that reads a message body.

What it screens is the sender's own new text: the decrypt stage has already cut a reply's
quoted fallback and an edit's `* ` fallback (an edit's new content is screened; an edit is
never routed again as a command or chat).

- `crisis` or `imminent`: the protocol reply, delivered to the writer's devices whatever
  their trust (`Reply.reach_user`); the sender is held; the operators are alerted (room,
  sender, level, link; never the text); nothing after this stage ever sees the message.
- `concern`: never a hold. The message goes on as usual, and the sender gets one gentle
  check-in (at most one per sender every `CHECK_IN_EVERY_S`).
- held: a held person's messages stop here with the hold reply, except fleet controls that
  carry no free text (`FLEET_CONTROLS`): `!ping`, `!status`, `!agents`, `!help`,
  `!burn status` and `!review` itself still work, so a hold never locks the fleet out.
  Conversation, role-play and everything that would send the held person's text to a model
  or to Gitea stay stopped until another operator runs `!review clear @user` or someone at
  the machine runs `fleet review clear @user`.

Screening runs on a small thread pool: the detector's learned stage is a few milliseconds of
numpy per message, and other rooms' work must keep moving meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bot.holds import HoldStore
from bot.pipeline.message import Incoming, Reply
from bot.pipeline.parse import Command, parse
from fleetcore.config import USER_ID_RE
from fleetcore.log import fields
from fleetcore.safety import SAFE, Level, Verdict, screen
from fleetcore.safety.protocol import (
    SafetyConfig,
    concern_reply,
    crisis_reply,
    hold_reply,
    operator_alert,
)

log = logging.getLogger(__name__)

# A sender whose message screened `concern` gets one check-in per this many seconds.
CHECK_IN_EVERY_S = 3600.0

# Commands a held person may still run: none takes free text, so none can carry their
# words to a model, to Gitea, or into a room. `None` means "no arguments at all".
FLEET_CONTROLS: dict[str, tuple[tuple[str, ...], ...] | None] = {
    "ping": None,
    "status": None,
    "agents": None,
    "help": None,
    "burn": (("status",),),
    "review": ((), ("list",)),  # and `clear @user:server`, checked below
}


def is_fleet_control(text: str) -> bool:
    """True for a fleet control without free text (allowed while held)."""
    parsed = parse(text)
    if not isinstance(parsed, Command) or parsed.body.strip():
        return False
    if parsed.name not in FLEET_CONTROLS:
        return False
    allowed = FLEET_CONTROLS[parsed.name]
    args = tuple(parsed.argline.split())
    if allowed is None:
        return not args
    if parsed.name == "review" and len(args) == 2 and args[0] == "clear":
        return USER_ID_RE.match(args[1]) is not None
    return args in allowed


def screen_all(texts: list[str]) -> Verdict:
    """The most serious verdict over every form of the message (body, rendered HTML); when
    no form was flagged, the one with the highest learned `risk`, which the output guard
    reads (`outguard.reply_context`)."""
    worst = SAFE
    for text in texts:
        verdict = screen(text)
        if verdict.level.rank > worst.level.rank or (
            verdict.level.rank == worst.level.rank == 0 and verdict.risk > worst.risk
        ):
            worst = verdict
    return worst


@dataclass(frozen=True)
class GuardResult:
    passed: bool
    # Sent by the guard itself, at once (the crisis reply, the hold reply, a check-in).
    replies: list[Reply] = field(default_factory=list)
    alert: str | None = None
    verdict: Verdict | None = None


class CrisisGuard:
    def __init__(
        self,
        cfg: SafetyConfig,
        holds: HoldStore,
        homeserver_name: str,
        executor: ThreadPoolExecutor,
    ) -> None:
        self._cfg = cfg
        self._holds = holds
        self._hs = homeserver_name
        self._executor = executor
        self._checked_in: dict[str, float] = {}

    async def check(self, msg: Incoming) -> GuardResult:
        loop = asyncio.get_running_loop()
        verdict = await loop.run_in_executor(self._executor, screen_all, msg.screened_texts())
        if verdict.is_crisis:
            return self._crisis(msg, verdict)
        if self._holds.is_held(msg.sender):
            return self._held(msg, verdict)
        replies = []
        if verdict.level is Level.concern and self._check_in_due(msg.sender):
            log.info(
                "concern_check_in",
                extra=fields(event_id=msg.event_id, room=msg.room_id, sender=msg.sender),
            )
            replies.append(
                Reply(msg.room_id, concern_reply(self._cfg), msg.event_id, purpose="check-in")
            )
        return GuardResult(passed=True, replies=replies, verdict=verdict)

    def _crisis(self, msg: Incoming, verdict: Verdict) -> GuardResult:
        self._holds.hold(
            msg.sender, msg.room_id, msg.event_id, verdict.level.value, list(verdict.reasons)
        )
        log.warning(
            "crisis_detected",
            extra=fields(
                event_id=msg.event_id,
                room=msg.room_id,
                sender=msg.sender,
                crisis_level=verdict.level.value,
                reasons=list(verdict.reasons),
                edit=msg.is_edit,
            ),
        )
        reply = Reply(
            msg.room_id,
            crisis_reply(verdict, self._cfg, locale=self._cfg.locale_for(msg.sender)),
            msg.event_id,
            reach_user=msg.sender,
        )
        return GuardResult(
            passed=False,
            replies=[reply],
            alert=operator_alert(msg.room_id, msg.sender, msg.event_id, verdict, self._hs),
            verdict=verdict,
        )

    def _held(self, msg: Incoming, verdict: Verdict) -> GuardResult:
        if not msg.is_edit and is_fleet_control(msg.body):
            log.info(
                "held_sender_control",
                extra=fields(event_id=msg.event_id, room=msg.room_id, sender=msg.sender),
            )
            return GuardResult(passed=True, verdict=verdict)
        log.info(
            "held_sender_message",
            extra=fields(
                event_id=msg.event_id, room=msg.room_id, sender=msg.sender, edit=msg.is_edit
            ),
        )
        # An edit was answered as the message it edits; the hold reply once is enough.
        replies = [] if msg.is_edit else [Reply(msg.room_id, hold_reply(self._cfg), msg.event_id)]
        return GuardResult(passed=False, replies=replies, verdict=verdict)

    def _check_in_due(self, sender: str) -> bool:
        now = time.monotonic()
        last = self._checked_in.get(sender)
        if last is not None and now - last < CHECK_IN_EVERY_S:
            return False
        self._checked_in[sender] = now
        if len(self._checked_in) > 10_000:  # forget the oldest, never grow without bound
            self._checked_in.pop(next(iter(self._checked_in)))
        return True
