"""`!trust @user:server`: an operator accepts another operator's changed identity."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.commands import USER, Arg, CommandContext, CommandRegistry
from bot.crosssign.operators import OperatorTrust


def register(
    registry: CommandRegistry, identity: OperatorTrust, reapply: Callable[[], Awaitable[None]]
) -> None:
    @registry.command(
        "trust",
        "accept an operator's changed cross-signing identity after checking with them",
        Arg("user", USER, missing="Name the operator whose new identity you checked."),
    )
    async def _trust(ctx: CommandContext, user: str) -> str:
        if user == ctx.msg.sender:
            return "Another operator has to confirm your new identity, not you."
        answer = identity.confirm(user)
        await reapply()
        return answer
