"""Stage 5: run a parsed command. Errors become one clear line, never a traceback in a room.

This is the one place where failures are turned into room text: a `UsageError` is shown
with the usage line of the form that was meant, any other `FleetError` (Gitea refused or
is away, a burn cannot start...) says its own `room_message`, and anything else is a bug,
logged with its traceback and reported by its type only.
"""

from __future__ import annotations

import difflib
import logging

from bot.commands import CommandContext, CommandGroup, CommandRegistry, UsageError
from fleetcore.errors import FleetError
from fleetcore.log import fields

log = logging.getLogger(__name__)


def unknown_command_hint(name: str, registry: CommandRegistry) -> str:
    close = difflib.get_close_matches(name, registry.names(), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join('!' + n for n in close)}?" if close else ""
    return f"Unknown command `!{name}`.{hint} Type `!help` for the list."


async def execute(ctx: CommandContext, registry: CommandRegistry) -> str:
    entry = registry.get(ctx.cmd.name)
    if entry is None:
        return unknown_command_hint(ctx.cmd.name, registry)
    usage = entry.usage  # narrowed to the subcommand's once the words name one
    try:
        if isinstance(entry, CommandGroup):
            spec, line = entry.resolve(ctx.cmd.argline)
        else:
            spec, line = entry, ctx.cmd.argline
        usage = spec.usage
        values = spec.bind(line, ctx.cmd.body)
        return await spec.handler(ctx, **values)
    except UsageError as exc:
        return f"{exc.room_message}\nUsage: `{usage()}`"
    except FleetError as exc:
        log.info(
            "command_refused",
            extra=fields(
                command=ctx.cmd.name,
                event_id=ctx.msg.event_id,
                room=ctx.msg.room_id,
                error=type(exc).__name__,
            ),
        )
        return exc.room_message
    except Exception as exc:
        log.exception(
            "command_failed",
            extra=fields(command=ctx.cmd.name, event_id=ctx.msg.event_id, room=ctx.msg.room_id),
        )
        return f"`!{ctx.cmd.name}` failed: {type(exc).__name__}. Nothing else was changed."
