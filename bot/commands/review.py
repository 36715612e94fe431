"""`!review`: operators look at and lift crisis holds. Only a human lifts a hold."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot.commands import CommandContext, CommandRegistry, UsageError
from bot.holds import HoldStore
from fleetcore.config import USER_ID_RE
from fleetcore.log import fields

log = logging.getLogger(__name__)


def register(registry: CommandRegistry, holds: HoldStore) -> None:
    @registry.add(
        "review",
        "!review list | !review clear @user:server",
        "show crisis holds, or lift one after a human has checked in",
    )
    async def _review(ctx: CommandContext) -> str:
        args = ctx.cmd.args()
        if not args or args[0] == "list":
            rows = holds.list()
            if not rows:
                return "No one is on hold."
            lines = [f"{len(rows)} on hold:"]
            for h in rows:
                when = datetime.fromtimestamp(h.created_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
                lines.append(
                    f"- {h.user_id}: {h.level} since {when} in {h.room_id} "
                    f"({', '.join(h.reasons) or 'no reason codes'})"
                )
            return "\n".join(lines)
        if args[0] == "clear":
            if len(args) != 2 or not USER_ID_RE.match(args[1]):
                raise UsageError("Give the user to clear, e.g. `!review clear @sam:example.org`.")
            user = args[1]
            if not holds.clear(user, by=ctx.msg.sender):
                return f"{user} is not on hold."
            log.info("hold_cleared", extra=fields(user=user, by=ctx.msg.sender))
            return f"Hold lifted for {user}. Their messages are routed normally again."
        raise UsageError(f"Unknown subcommand `{args[0]}`.")
