"""`!help`, `!ping`, `!status`: the commands every fleet has."""

from __future__ import annotations

import asyncio

from bot.commands import Arg, CommandContext, CommandGroup, CommandRegistry, UsageError, shown

SERVICES = ("homeserver", "nats", "gitea")


def _duration(seconds: float) -> str:
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    parts = [f"{d}d"] if d else []
    parts += [f"{h}h"] if h or d else []
    parts += [f"{m}m", f"{s}s"]
    return " ".join(parts)


def register(registry: CommandRegistry) -> None:
    @registry.command(
        "help",
        "list the commands, or show one command's forms",
        Arg("command", default=None, metavar="COMMAND"),
    )
    async def _help(ctx: CommandContext, command: str | None) -> str:
        if command is None:
            lines = ["Commands:"]
            for each in registry.entries():
                lines += each.help_lines()
            return "\n".join(lines)
        entry = registry.get(command.lstrip("!").lower())
        if entry is None:
            raise UsageError(f"There is no command {shown('!' + command.lstrip('!'))}.")
        if isinstance(entry, CommandGroup):
            return "\n".join(
                [f"!{entry.name}: {entry.summary}"]
                + [f"- `{form.usage()}`: {form.summary}" for form in entry.forms()]
            )
        return f"`{entry.usage()}`: {entry.summary}"

    @registry.command("ping", "check that the bot is alive")
    async def _ping(ctx: CommandContext) -> str:
        return "pong"

    @registry.command("status", "version, uptime, rooms, SOUL.md and service health")
    async def _status(ctx: CommandContext) -> str:
        svc = ctx.services
        names = list(SERVICES) + [n for n in svc.health if n not in SERVICES]
        checks = {n: svc.health[n] for n in names if n in svc.health}
        results = await asyncio.gather(*(check() for check in checks.values()))
        health = dict(zip(checks, results, strict=True))
        lines = [
            f"Hermes fleet {svc.version}, up {_duration(svc.uptime_s())}",
            f"Homeserver: {svc.config.matrix.homeserver} as {svc.config.matrix.user_id}",
            f"Joined rooms: {len(svc.matrix.joined_rooms())}",
            f"SOUL.md sha256: {svc.soul.sha256}",
            svc.soul_check.status_line if svc.soul_check else "SOUL.md signature not checked",
            "Services:",
        ]
        for name in names:
            if name in health:
                ok, detail = health[name]
                lines.append(f"- {name}: {'ok' if ok else 'DOWN'} ({detail})")
            else:
                lines.append(f"- {name}: not configured")
        for section in svc.status_sections:
            lines.append(await section())
        return "\n".join(lines)
