"""Stage 2: the crisis guard. The first code that reads a message body.

A message that screens as crisis stops here: it gets the protocol reply, the sender is held,
the operators are alerted (room, sender, level, link; never the text), and nothing after
this stage ever sees it. A held sender's later messages stop here too, whatever they say,
until an operator runs `!review clear`.

Screening runs on a small thread pool: the detector's learned stage is a few milliseconds of
numpy per message, and other rooms' work must keep moving meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bot.holds import HoldStore
from bot.pipeline.message import Incoming, Reply
from fleetcore.log import fields
from fleetcore.safety import Verdict, screen
from fleetcore.safety.protocol import SafetyConfig, crisis_reply, hold_reply, operator_alert

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GuardResult:
    passed: bool
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

    async def check(self, msg: Incoming) -> GuardResult:
        loop = asyncio.get_running_loop()
        verdict = await loop.run_in_executor(self._executor, screen, msg.body)
        if verdict.is_crisis:
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
                ),
            )
            return GuardResult(
                passed=False,
                replies=[Reply(msg.room_id, crisis_reply(verdict, self._cfg), msg.event_id)],
                alert=operator_alert(msg.room_id, msg.sender, msg.event_id, verdict, self._hs),
                verdict=verdict,
            )
        if self._holds.is_held(msg.sender):
            log.info(
                "held_sender_message",
                extra=fields(event_id=msg.event_id, room=msg.room_id, sender=msg.sender),
            )
            return GuardResult(
                passed=False, replies=[Reply(msg.room_id, hold_reply(self._cfg), msg.event_id)]
            )
        return GuardResult(passed=True, verdict=verdict)
