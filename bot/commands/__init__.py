"""Room commands. Each area (forge, burn, safety review, trust) declares its own at start,
so `!help` always lists exactly what this bot can do with its current configuration.

A command is declared once, next to its handler (`declare.py`): name, summary, typed
arguments, options and subcommands; the parser, the usage line and the help text all come
from that declaration.
"""

from bot.commands.declare import (
    ISSUE,
    POSITIVE,
    REQUIRED,
    USER,
    WORD,
    Arg,
    Body,
    CommandContext,
    CommandGroup,
    CommandRegistry,
    CommandSpec,
    Flag,
    Kind,
    Text,
    UsageError,
    choice,
    matching,
    shown,
)

__all__ = [
    "ISSUE",
    "POSITIVE",
    "REQUIRED",
    "USER",
    "WORD",
    "Arg",
    "Body",
    "CommandContext",
    "CommandGroup",
    "CommandRegistry",
    "CommandSpec",
    "Flag",
    "Kind",
    "Text",
    "UsageError",
    "choice",
    "matching",
    "shown",
]
