"""`!burn` and `!agents`: the fleet at work, from a project room."""

from __future__ import annotations

from bot.burn.service import BurnError, BurnService
from bot.commands import CommandContext, CommandRegistry, UsageError
from bot.pipeline.parse import split_flags
from fleetcore.forge.client import GiteaError
from fleetcore.projects import ProjectStore


def register(registry: CommandRegistry, burns: BurnService, projects: ProjectStore) -> None:
    @registry.add(
        "burn",
        "!burn [--limit N] [--label L] [--tier T] | !burn status | !burn stop",
        "wolves triage this project's open issues; one progress message shows how it goes",
    )
    async def _burn(ctx: CommandContext) -> str:
        room = ctx.msg.room_id
        args = ctx.cmd.args()
        if args and args[0] == "status":
            return burns.status(room)
        if args and args[0] == "stop":
            return await burns.stop(room)
        project = projects.for_room(room)
        if project is None:
            raise UsageError("Run !burn in a project room (see `!project list`).")
        try:
            pos, flags = split_flags(args, {"limit", "label", "tier"})
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if pos:
            raise UsageError(f"Unexpected `{pos[0]}`.")
        limit = None
        if "limit" in flags:
            if not flags["limit"].isdigit() or int(flags["limit"]) < 1:
                raise UsageError("--limit takes a positive number.")
            limit = int(flags["limit"])
        try:
            await burns.begin(
                project, room, limit=limit, label=flags.get("label"), tier=flags.get("tier")
            )
        except BurnError as exc:
            return str(exc)
        except ValueError as exc:  # a tier name that cannot be a subject token
            raise UsageError(str(exc)) from None
        except GiteaError as exc:
            return f"Could not read the issues: {exc}. Nothing was queued."
        return ""  # the progress message is the answer

    @registry.add("agents", "!agents", "list the wolves that are alive, with their work")
    async def _agents(ctx: CommandContext) -> str:
        return await burns.agents_text()
