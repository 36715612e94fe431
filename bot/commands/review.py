"""`!review`: operators look at and lift crisis holds. Only a human lifts a hold.

`!review` is a fleet control a held person can still run (the guard lets it through), so a
hold never locks the fleet out; but an operator cannot lift their own hold from a room:
another operator does, or, with a single operator, someone at the machine runs
`fleet review clear @user`.
"""

from __future__ import annotations

import logging

from bot.commands import USER, Arg, CommandContext, CommandRegistry
from bot.holds import HoldStore, describe_holds
from fleetcore.log import fields

log = logging.getLogger(__name__)

OWN_HOLD = (
    "You can't lift your own hold from a room. Another operator can, with "
    "`!review clear {user}`; or someone at the bot's machine can run "
    "`fleet review clear {user}`."
)


def register(registry: CommandRegistry, holds: HoldStore) -> None:
    review = registry.group(
        "review", "show crisis holds, or lift one after a human has checked in", when_empty="list"
    )

    @review.command("list", "who is on hold, since when, where and why (reason codes only)")
    async def _list(ctx: CommandContext) -> str:
        return describe_holds(holds.list())

    @review.command(
        "clear",
        "lift a hold after a human has checked in with the person",
        Arg("user", USER, missing="Give the user to clear, e.g. `!review clear @sam:example.org`."),
    )
    async def _clear(ctx: CommandContext, user: str) -> str:
        if user == ctx.msg.sender and holds.is_held(user):
            log.info("hold_self_clear_refused", extra=fields(user=user))
            return OWN_HOLD.format(user=user)
        if not holds.clear(user, by=ctx.msg.sender):
            return f"{user} is not on hold."
        log.info("hold_cleared", extra=fields(user=user, by=ctx.msg.sender))
        return f"Hold lifted for {user}. Their messages are routed normally again."
