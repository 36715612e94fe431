"""Stage 4: text -> command. Pure; the grammar is deliberately small.

`!name args on the first line` with an optional body on the following lines (kept verbatim,
so Markdown in an issue body survives). What the arguments mean is each command's own
declaration (`bot.commands.declare`), applied when the command executes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PREFIX = "!"
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class Command:
    name: str
    argline: str = field(repr=False)
    body: str = field(repr=False, default="")


@dataclass(frozen=True)
class NotACommand:
    pass


@dataclass(frozen=True)
class BadCommand:
    reason: str


def looks_like_command(text: str) -> bool:
    return text.lstrip().startswith(PREFIX)


def parse(text: str) -> Command | NotACommand | BadCommand:
    stripped = text.strip()
    if not stripped.startswith(PREFIX):
        return NotACommand()
    first, _, rest = stripped.partition("\n")
    head = first[len(PREFIX) :].strip()
    if not head:
        return BadCommand("a command name must follow `!`")
    name, _, argline = head.partition(" ")
    name = name.lower()
    if not _NAME.match(name):
        return BadCommand(f"`{name[:32]}` is not a command name")
    return Command(name=name, argline=argline.strip(), body=rest.strip("\n"))
