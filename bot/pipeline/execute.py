"""Stage 5: run a parsed command. Errors become one clear line, never a traceback in a room."""

from __future__ import annotations

import difflib
import logging

from bot.commands import CommandContext, CommandRegistry, UsageError
from fleetcore.log import fields

log = logging.getLogger(__name__)


def unknown_command_hint(name: str, registry: CommandRegistry) -> str:
    names = [s.name for s in registry.specs()]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join('!' + n for n in close)}?" if close else ""
    return f"Unknown command `!{name}`.{hint} Type `!help` for the list."


async def execute(ctx: CommandContext, registry: CommandRegistry) -> str:
    spec = registry.get(ctx.cmd.name)
    if spec is None:
        return unknown_command_hint(ctx.cmd.name, registry)
    try:
        return await spec.handler(ctx)
    except UsageError as exc:
        return f"{exc}\nUsage: `{spec.usage}`"
    except Exception as exc:
        log.exception(
            "command_failed",
            extra=fields(command=spec.name, event_id=ctx.msg.event_id, room=ctx.msg.room_id),
        )
        return f"`!{spec.name}` failed: {type(exc).__name__}. Nothing else was changed."
