"""Command registry: each command is a name, a one-line usage, and an async handler.

Areas (forge, burn, safety review, trust) register their own commands at start, so `!help`
always lists exactly what this bot can do with its current configuration.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.pipeline.message import Incoming
    from bot.pipeline.parse import Command
    from bot.services import BotServices


@dataclass
class CommandContext:
    msg: Incoming
    cmd: Command
    services: BotServices


Handler = Callable[[CommandContext], Awaitable[str]]


class UsageError(Exception):
    """Bad arguments: the message is shown with the command's usage line."""


@dataclass(frozen=True)
class CommandSpec:
    name: str
    usage: str
    summary: str
    handler: Handler


class CommandRegistry:
    def __init__(self) -> None:
        self._specs: dict[str, CommandSpec] = {}

    def add(self, name: str, usage: str, summary: str) -> Callable[[Handler], Handler]:
        def deco(handler: Handler) -> Handler:
            if name in self._specs:
                raise ValueError(f"command !{name} registered twice")
            self._specs[name] = CommandSpec(name, usage, summary, handler)
            return handler

        return deco

    def get(self, name: str) -> CommandSpec | None:
        return self._specs.get(name)

    def specs(self) -> list[CommandSpec]:
        return sorted(self._specs.values(), key=lambda s: s.name)
