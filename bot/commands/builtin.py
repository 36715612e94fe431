"""`!help`, `!ping`, `!status`: the commands every fleet has."""

from __future__ import annotations

import asyncio

from bot.commands import CommandContext, CommandRegistry

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
    @registry.add("help", "!help", "list the commands with their usage")
    async def _help(ctx: CommandContext) -> str:
        lines = ["Commands:"]
        lines += [f"- `{s.usage}`: {s.summary}" for s in registry.specs()]
        return "\n".join(lines)

    @registry.add("ping", "!ping", "check that the bot is alive")
    async def _ping(ctx: CommandContext) -> str:
        return "pong"

    @registry.add("status", "!status", "version, uptime, rooms, SOUL.md and service health")
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
