"""`!trust @user:server`: an operator accepts another operator's changed identity."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.commands import CommandContext, CommandRegistry, UsageError
from bot.crosssign.operators import OperatorTrust
from fleetcore.config import USER_ID_RE


def register(
    registry: CommandRegistry, identity: OperatorTrust, reapply: Callable[[], Awaitable[None]]
) -> None:
    @registry.add(
        "trust",
        "!trust @user:server",
        "accept an operator's changed cross-signing identity after checking with them",
    )
    async def _trust(ctx: CommandContext) -> str:
        args = ctx.cmd.args()
        if len(args) != 1 or not USER_ID_RE.match(args[0]):
            raise UsageError("Name the operator whose new identity you checked.")
        if args[0] == ctx.msg.sender:
            return "Another operator has to confirm your new identity, not you."
        answer = identity.confirm(args[0])
        await reapply()
        return answer
