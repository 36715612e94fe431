"""The command parser against arbitrary text (issue #14): a command, or a clear error.

`parse` turns a message into a Command, NotACommand or BadCommand; the command's own
declaration then binds its words or raises UsageError (a FleetError). Nothing else may
come out, for any text, with every command this bot declares. Errors quote a typed word
short and visibly, whatever it held.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.commands import CommandGroup, CommandRegistry, UsageError, builtin, forge, review
from bot.commands import burn as burn_commands
from bot.commands import trust as trust_commands
from bot.commands.declare import tokenize
from bot.holds import HoldStore
from bot.pipeline.parse import SHOWN_MAX, BadCommand, Command, NotACommand, parse
from fleetcore.errors import FleetError
from fleetcore.projects import Project, ProjectStore
from tests.hostile.strategies import NASTY_CHARS, texts


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CommandRegistry]:
    """Every command the bot can declare; handlers are never called here, only binding."""
    tmp = tmp_path_factory.mktemp("parser")
    projects = ProjectStore(tmp / "projects.json", {"ex": Project("ex", "o/r", "!r:hs")})
    holds = HoldStore(Path(tmp / "holds.db"))
    registry = CommandRegistry()
    builtin.register(registry)
    forge.register(registry, cast(Any, object()), projects, "https://gitea")
    burn_commands.register(registry, cast(Any, object()), projects)
    trust_commands.register(registry, cast(Any, object()), cast(Any, None))
    review.register(registry, holds)
    yield registry


def bind(registry: CommandRegistry, cmd: Command) -> dict[str, Any] | FleetError | None:
    """What execute() does before the handler: resolve the form, bind its words."""
    entry = registry.get(cmd.name)
    if entry is None:
        return None
    try:
        if isinstance(entry, CommandGroup):
            spec, line = entry.resolve(cmd.argline)
        else:
            spec, line = entry, cmd.argline
        return spec.bind(line, cmd.body)
    except UsageError as exc:
        return exc


def check_visible(message: str) -> None:
    """No character that reorders or hides the rest of a line, and nothing quoted at length."""
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in message.replace("\n", ""))
    for quoted in message.split("`")[1::2]:
        assert len(quoted) <= SHOWN_MAX * 10  # escapes make a character up to 10 long


# The grammar's own pieces: options, issue refs, numbers, states, every quote, separators.
PIECES = "--label --page --limit --state --label= #12 12 0 -1 open closed list add clear @op:hs"
PIECES_EXTRA = ['"', "'", "“", "”", "‘", "’", "--", "=", " ", "  ", "\t", "\n"]


@st.composite
def command_lines(draw: st.DrawFn, registry: CommandRegistry) -> str:
    """`!name` of a real command, maybe a real subcommand, then words from the grammar."""
    name = draw(st.sampled_from(registry.names()))
    entry = registry.get(name)
    subs = sorted(entry.subs) if isinstance(entry, CommandGroup) else []
    sub = draw(st.sampled_from(["", *subs]))
    pieces = st.sampled_from(PIECES.split() + PIECES_EXTRA) | texts
    words = draw(st.lists(pieces, max_size=12))
    return f"!{name} {sub} " + " ".join(words)


@given(text=texts | st.text(max_size=500))
def test_any_text_parses_to_a_command_or_a_clear_error(
    registry: CommandRegistry, text: str
) -> None:
    parsed = parse(text)
    assert isinstance(parsed, Command | NotACommand | BadCommand)
    if isinstance(parsed, BadCommand):
        check_visible(parsed.reason)
    if isinstance(parsed, Command):
        assert "\n" not in parsed.argline
        result = bind(registry, parsed)
        if isinstance(result, FleetError):
            check_visible(result.room_message)


@given(data=st.data())
def test_real_commands_with_hostile_words_bind_or_raise_usage_errors(
    registry: CommandRegistry, data: st.DataObject
) -> None:
    line = data.draw(command_lines(registry))
    parsed = parse(line)
    assert isinstance(parsed, Command | BadCommand)
    if isinstance(parsed, Command):
        result = bind(registry, parsed)
        assert result is None or isinstance(result, dict | UsageError)
        if isinstance(result, UsageError):
            check_visible(result.room_message)


@given(word=st.text(alphabet=st.sampled_from(NASTY_CHARS) | st.characters(), max_size=200))
def test_a_quoted_word_is_short_and_visible(word: str) -> None:
    from bot.pipeline.parse import shown

    check_visible(shown(word))


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "line",
    [
        '"a ' * 40_000,  # every word opens a quote that never closes
        "“" * 120_000,
        "' " * 60_000,
        "--label " * 15_000,
        "a" * 120_000,
        " " * 120_000 + "x",
    ],
    ids=["unclosed-quotes", "curly-quotes", "apostrophes", "repeated-option", "one-word", "spaces"],
)
def test_tokenizer_and_binding_are_linear_on_120_kb_lines(
    registry: CommandRegistry, line: str
) -> None:
    """Twice a Matrix event (64 KB): linear is about a second, quadratic would be hours."""
    assert isinstance(tokenize(line), list)
    for name in ("issues", "issue", "burn", "help"):
        parsed = parse(f"!{name} {line}")
        assert isinstance(parsed, Command)
        bind(registry, parsed)
