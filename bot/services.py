"""What command handlers may use: one object, so handlers stay testable without a network."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fleetcore import __version__
from fleetcore.soul import Soul, SoulCheck, judge

if TYPE_CHECKING:
    from bot.matrix.client import MatrixShell
    from fleetcore.config import FleetConfig

# A health check answers (ok, one-line detail); it must not raise.
HealthCheck = Callable[[], Awaitable[tuple[bool, str]]]


@dataclass
class BotServices:
    config: FleetConfig
    soul: Soul
    matrix: MatrixShell
    started_at: float = field(default_factory=time.monotonic)
    version: str = __version__
    # name -> check; a service that is not configured has no check and shows as such.
    health: dict[str, HealthCheck] = field(default_factory=dict)
    # Extra `!status` sections contributed by areas (providers, agents, burns...).
    status_sections: list[Callable[[], Awaitable[str]]] = field(default_factory=list)
    # Area objects (forge client, bus, chain) by name, for their own commands.
    extras: dict[str, Any] = field(default_factory=dict)
    # SOUL.md's signature, judged once at start: the bot runs on any SOUL.md (the operator
    # must be able to talk to it to fix one) and says in `!status` what it found.
    soul_check: SoulCheck | None = None

    def __post_init__(self) -> None:
        if self.soul_check is None:
            self.soul_check = judge(self.soul, self.config.state_dir)

    def uptime_s(self) -> float:
        return time.monotonic() - self.started_at
