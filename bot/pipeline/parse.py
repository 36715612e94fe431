"""Stage 4: text -> command. Pure; the grammar is deliberately small.

`!name args on the first line` with an optional body on the following lines (kept verbatim,
so Markdown in an issue body survives). What the arguments mean is each command's own
declaration (`bot.commands.declare`), applied when the command executes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

PREFIX = "!"
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")

# How much of a typed word an error message (here, and in `bot.commands`) may quote.
SHOWN_MAX = 40


def _visible(ch: str) -> str:
    if unicodedata.category(ch) not in ("Cc", "Cf", "Cs"):
        return ch
    return f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}"


def shown(word: str) -> str:
    """A word as an error quotes it: in backticks, cut short, on one line.

    Control and format characters (a right-to-left override, a zero-width space) are
    written as escapes: echoed raw, they would reorder or hide the rest of the bot's
    answer, and the person could not see what made their word differ.
    """
    flat = " ".join(word.split())
    if len(flat) > SHOWN_MAX:
        flat = flat[: SHOWN_MAX - 1] + "…"
    return "`" + "".join(map(_visible, flat)) + "`"


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
    # Any whitespace ends the name: `!help<TAB>ping` is `!help ping`.
    name, *args = head.split(None, 1)
    name = name.lower()
    if not _NAME.match(name):
        return BadCommand(f"{shown(name)} is not a command name")
    return Command(name=name, argline=args[0].strip() if args else "", body=rest.strip("\n"))
