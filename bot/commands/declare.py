"""Commands declared once: name, summary, typed arguments, options and subcommands.

A command states what it takes next to its handler, and everything else comes from that
one declaration: the parser that turns `!issues closed --label bug --page 2` into
`state="closed", label="bug", page=2`, the errors for bad or missing words, the usage line
shown after an error, and the `!help` text. At registration the handler's parameters are
checked against the declaration, so a mismatch stops the bot at start, not in a room.

The grammar (the first line of the message; later lines are the body):

- words are separated by spaces; a word that starts with a quote (`"`, `'`, `“`, `‘`) runs
  to the matching quote followed by a space or the end: `--label "needs review"`;
- `--name value` or `--name=value` anywhere on the line sets an option, for commands that
  declare options (a quoted word is never an option); any other `--word` is refused by
  name, so a typo does not quietly become part of a title;
- `Arg`s take one word each, in order; a `Text` takes the rest of the line as it was typed
  (quotes and spacing kept), optionally followed by the body; a `Body` is the lines after
  the first, verbatim.

Words a person typed are never echoed at length: errors quote at most a few dozen
characters of them.
"""

from __future__ import annotations

import bisect
import inspect
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from bot.pipeline.parse import shown
from fleetcore.config import USER_ID_RE
from fleetcore.errors import FleetError

if TYPE_CHECKING:
    from bot.pipeline.message import Incoming
    from bot.pipeline.parse import Command
    from bot.services import BotServices

T = TypeVar("T")


class UsageError(FleetError):
    """Bad or missing arguments: the message is shown with the command's usage line."""


# -- kinds: what a word may be --------------------------------------------------------------


@dataclass(frozen=True)
class Kind(Generic[T]):
    """A typed value: `convert` raises ValueError when the word is not one.

    `error` is the message then, with `{word}` (the word, quoted and cut short), `{what}`
    and `{What}` (`--page`, or the argument's name); None uses the ValueError's own text.
    """

    convert: Callable[[str], T]
    metavar: str
    error: str | None = None

    def __call__(self, word: str, what: str) -> T:
        try:
            return self.convert(word)
        except ValueError as exc:
            if self.error is None:
                raise UsageError(str(exc)) from None
            message = self.error.format(
                word=shown(word), what=what, What=what[:1].upper() + what[1:]
            )
            raise UsageError(message) from None


def _word(word: str) -> str:
    return word


def _positive(word: str) -> int:
    if not word.isdigit() or len(word) > 9 or int(word) < 1:
        raise ValueError(word)
    return int(word)


_ISSUE_REF = re.compile(r"^#?(\d{1,9})$")


def _issue_number(word: str) -> int:
    m = _ISSUE_REF.match(word)
    if not m:
        raise ValueError(word)
    return int(m.group(1))


def matching(pattern: re.Pattern[str]) -> Callable[[str], str]:
    def convert(word: str) -> str:
        if not pattern.match(word):
            raise ValueError(word)
        return word

    return convert


def choice(*options: str) -> Kind[str]:
    """One of a few words; `State is open or closed.` when it is not."""

    def convert(word: str) -> str:
        if word not in options:
            raise ValueError(word)
        return word

    return Kind(convert, "|".join(options), "{What} is " + " or ".join(options) + ".")


WORD: Kind[str] = Kind(_word, "WORD")
TEXT: Kind[str] = Kind(_word, "TEXT")
POSITIVE: Kind[int] = Kind(_positive, "N", "{what} takes a positive number.")
ISSUE: Kind[int] = Kind(_issue_number, "#N", "{word} is not an issue number (write #12).")
USER: Kind[str] = Kind(
    matching(USER_ID_RE), "@user:server", "{word} is not a Matrix user id (write @user:server)."
)


# -- parameters -----------------------------------------------------------------------------


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class _Positional:
    name: str
    kind: Kind[Any] = WORD
    default: Any = REQUIRED
    missing: str | None = None  # the message when it is absent
    metavar: str | None = None

    @property
    def shown_as(self) -> str:
        return self.metavar or self.kind.metavar


@dataclass(frozen=True)
class Arg(_Positional):
    """One word, in order. Without a default it is required."""


@dataclass(frozen=True)
class Text(_Positional):
    """The rest of the first line as typed; `with_body` adds the following lines."""

    kind: Kind[Any] = TEXT
    with_body: bool = False


@dataclass(frozen=True)
class Flag:
    """`--name VALUE`, anywhere on the line; `default` when absent."""

    name: str
    kind: Kind[Any] = WORD
    default: Any = None
    metavar: str | None = None

    @property
    def shown_as(self) -> str:
        return f"--{self.name} {self.metavar or self.kind.metavar}"


@dataclass(frozen=True)
class Body:
    """The lines after the first, verbatim (Markdown survives)."""

    name: str
    what: str = "body"


Param = Arg | Text | Flag | Body


# -- words ----------------------------------------------------------------------------------

_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’"}
_OPTION = re.compile(r"^--([a-z][a-z0-9-]*)(?:=(.*))?$", re.DOTALL)


@dataclass(frozen=True)
class Token:
    text: str = field(repr=False)  # the value, quotes removed
    start: int  # span in the line, quotes included
    end: int
    index: int  # position among the line's words
    quoted: bool = False


def tokenize(line: str) -> list[Token]:
    """Words with their spans; linear in the line's length, whatever it contains."""
    # A closing quote counts only when followed by a space or the end of the line.
    closers: dict[str, list[int]] = {
        c: [
            i
            for i, ch in enumerate(line)
            if ch == c and (i + 1 == len(line) or line[i + 1].isspace())
        ]
        for c in set(_QUOTES.values())
    }
    tokens: list[Token] = []
    i, n = 0, len(line)
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        close = _QUOTES.get(line[i])
        if close is not None:
            ends = closers[close]
            k = bisect.bisect_right(ends, i)
            if k < len(ends):
                j = ends[k]
                tokens.append(Token(line[i + 1 : j], i, j + 1, len(tokens), quoted=True))
                i = j + 1
                continue
        j = i
        while j < n and not line[j].isspace():
            j += 1
        tokens.append(Token(line[i:j], i, j, len(tokens)))
        i = j
    return tokens


def _verbatim(line: str, tokens: Sequence[Token]) -> str:
    """The typed text of `tokens`: runs of neighbouring words kept as typed, joined by spaces."""
    if len(tokens) == 1 and tokens[0].quoted:
        return tokens[0].text
    runs: list[list[Token]] = []
    for tok in tokens:
        if runs and runs[-1][-1].index + 1 == tok.index:
            runs[-1].append(tok)
        else:
            runs.append([tok])
    return " ".join(line[run[0].start : run[-1].end] for run in runs)


# -- commands -------------------------------------------------------------------------------


@dataclass
class CommandContext:
    msg: Incoming
    cmd: Command
    services: BotServices


Handler = Callable[..., Awaitable[str]]


@dataclass(frozen=True)
class CommandSpec:
    """One runnable command: `!name` or `!name sub`, its parameters and its handler."""

    path: tuple[str, ...]
    summary: str
    params: tuple[Param, ...]
    handler: Handler

    @property
    def name(self) -> str:
        return self.path[0]

    def usage(self) -> str:
        parts = ["!" + " ".join(self.path)]
        body = ""
        for p in self.params:
            if isinstance(p, Body):
                body = f"  ({p.what} on the following lines)"
            elif isinstance(p, Flag):
                parts.append(f"[{p.shown_as}]")
            elif p.default is REQUIRED:
                parts.append(p.shown_as)
            else:
                parts.append(f"[{p.shown_as}]")
        return " ".join(parts) + body

    def help_lines(self) -> list[str]:
        return [f"- `{self.usage()}`: {self.summary}"]

    def bind(self, line: str, body: str) -> dict[str, Any]:
        """The handler's keyword arguments from the words typed; UsageError when they don't fit."""
        tokens = tokenize(line)
        flags = {p.name: p for p in self.params if isinstance(p, Flag)}
        values: dict[str, Any] = {}
        positional: list[Token] = []
        it = iter(tokens)
        for tok in it:
            m = None if tok.quoted or not flags else _OPTION.match(tok.text)
            if m is None:
                positional.append(tok)
                continue
            name, inline = m.group(1), m.group(2)
            flag = flags.get(name)
            if flag is None:
                known = ", ".join(f"--{f}" for f in flags)
                raise UsageError(
                    f"Unknown option {shown('--' + name)} (this command takes {known})."
                )
            if name in values:
                raise UsageError(f"--{name} is given twice.")
            if inline is None:
                nxt = next(it, None)
                if nxt is None:
                    raise UsageError(f"--{name} needs a value.")
                inline = nxt.text
            values[name] = flag.kind(inline, f"--{name}")
        for flag in flags.values():
            values.setdefault(flag.name, flag.default)

        for p in self.params:
            if isinstance(p, Arg):
                if positional:
                    values[p.name] = p.kind(positional.pop(0).text, p.name)
                else:
                    values[p.name] = self._absent(p)
            elif isinstance(p, Text):
                text = _verbatim(line, positional).strip() if positional else ""
                positional = []
                if p.with_body:
                    text = "\n".join(t for t in (text, body) if t)
                values[p.name] = p.kind(text, p.name) if text else self._absent(p)
            elif isinstance(p, Body):
                values[p.name] = body
        if positional:
            raise UsageError(f"Unexpected {shown(positional[0].text)}.")
        return values

    @staticmethod
    def _absent(p: Arg | Text) -> Any:
        if p.default is REQUIRED:
            raise UsageError(p.missing or f"Give {p.shown_as}.")
        return p.default


def _check_declaration(path: tuple[str, ...], params: Sequence[Param], handler: Handler) -> None:
    """The handler takes `ctx` and exactly the declared names: checked once, at start."""
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise TypeError(f"!{' '.join(path)} declares a parameter twice: {names}")
    texts = [i for i, p in enumerate(params) if isinstance(p, Text)]
    if len(texts) > 1 or (texts and any(isinstance(p, Arg) for p in params[texts[0] + 1 :])):
        raise TypeError(f"!{' '.join(path)}: one Text at most, after every Arg")
    sig = inspect.signature(handler)
    taken = [n for n in sig.parameters if n != "ctx"]
    if "ctx" not in sig.parameters or sorted(taken) != sorted(names):
        raise TypeError(
            f"handler of !{' '.join(path)} takes {list(sig.parameters)}, declared ctx + {names}"
        )


class CommandGroup:
    """`!name sub ...`: subcommands, plus what runs when the first word is none of them."""

    def __init__(self, name: str, summary: str, when_empty: str | None) -> None:
        self.name = name
        self.summary = summary
        # The subcommand for a bare `!name` (`!project` lists, like `!project list`).
        self.when_empty = when_empty
        self.subs: dict[str, CommandSpec] = {}
        # Runs when the first word is not a subcommand (`!burn --limit 5`); None: an error.
        self.bare: CommandSpec | None = None

    def command(
        self, sub: str | None, summary: str, *params: Param
    ) -> Callable[[Handler], Handler]:
        """Declare `!name sub` (or, with `sub=None`, what runs without a subcommand)."""
        path = (self.name,) if sub is None else (self.name, sub)

        def deco(handler: Handler) -> Handler:
            _check_declaration(path, params, handler)
            spec = CommandSpec(path, summary, tuple(params), handler)
            if sub is None:
                if self.bare is not None:
                    raise ValueError(f"!{self.name} has two bare forms")
                self.bare = spec
            elif sub in self.subs:
                raise ValueError(f"!{self.name} {sub} declared twice")
            else:
                self.subs[sub] = spec
            return handler

        return deco

    def forms(self) -> list[CommandSpec]:
        return ([self.bare] if self.bare else []) + list(self.subs.values())

    def usage(self) -> str:
        return " | ".join(spec.usage() for spec in self.forms())

    def help_lines(self) -> list[str]:
        return [f"- `{self.usage()}`: {self.summary}"]

    def resolve(self, line: str) -> tuple[CommandSpec, str]:
        """The form the words ask for, and the line that is left for its arguments."""
        tokens = tokenize(line)
        if not tokens:
            if self.when_empty is not None:
                return self.subs[self.when_empty], ""
            if self.bare is not None:
                return self.bare, line
            raise UsageError(f"Say what !{self.name} should do.")
        first = tokens[0]
        if not first.quoted and first.text in self.subs:
            return self.subs[first.text], line[first.end :].strip()
        if self.bare is not None:
            return self.bare, line
        raise UsageError(f"Unknown subcommand {shown(first.text)}.")


Entry = CommandSpec | CommandGroup


class CommandRegistry:
    """Every command this bot offers, as its areas declared them at start."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    def _claim(self, name: str, entry: Entry) -> None:
        if name in self._entries:
            raise ValueError(f"command !{name} registered twice")
        self._entries[name] = entry

    def command(self, name: str, summary: str, *params: Param) -> Callable[[Handler], Handler]:
        """Declare `!name` with its parameters; the handler is `(ctx, **values) -> str`."""

        def deco(handler: Handler) -> Handler:
            _check_declaration((name,), params, handler)
            self._claim(name, CommandSpec((name,), summary, tuple(params), handler))
            return handler

        return deco

    def group(self, name: str, summary: str, *, when_empty: str | None = None) -> CommandGroup:
        """Declare `!name` with subcommands; add them with `group.command(sub, ...)`."""
        group = CommandGroup(name, summary, when_empty)
        self._claim(name, group)
        return group

    def get(self, name: str) -> Entry | None:
        return self._entries.get(name)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in sorted(self._entries)]

    def names(self) -> list[str]:
        return sorted(self._entries)
