"""`!burn` and `!agents`: the fleet at work, from a project room."""

from __future__ import annotations

from bot.burn.service import BurnService
from bot.commands import POSITIVE, CommandContext, CommandRegistry, Flag, Kind, UsageError
from fleetcore.bus.subjects import check_token
from fleetcore.projects import ProjectStore

# A tier names a NATS subject token; a dot or a wildcard would widen what the burn touches.
TIER: Kind[str] = Kind(lambda word: check_token(word, "--tier"), "T")


def register(registry: CommandRegistry, burns: BurnService, projects: ProjectStore) -> None:
    burn = registry.group(
        "burn", "wolves triage this project's open issues; one progress message shows how it goes"
    )

    @burn.command(
        None,
        "queue this project's open, unclaimed, untriaged issues for the wolves",
        Flag("limit", POSITIVE),
        Flag("label", metavar="L"),
        Flag("tier", TIER),
    )
    async def _burn(
        ctx: CommandContext, limit: int | None, label: str | None, tier: str | None
    ) -> str:
        room = ctx.msg.room_id
        project = projects.for_room(room)
        if project is None:
            raise UsageError("Run !burn in a project room (see `!project list`).")
        await burns.begin(project, room, limit=limit, label=label, tier=tier)
        return ""  # the progress message is the answer

    @burn.command("status", "how the burn in this room is going, or how the last one ended")
    async def _status(ctx: CommandContext) -> str:
        return burns.status(ctx.msg.room_id)

    @burn.command("stop", "withdraw the queued tasks of this room's burn")
    async def _stop(ctx: CommandContext) -> str:
        return await burns.stop(ctx.msg.room_id)

    @registry.command("agents", "list the wolves that are alive, with their work")
    async def _agents(ctx: CommandContext) -> str:
        return await burns.agents_text()
