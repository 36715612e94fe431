"""Commands declared once: the parser, usage and errors that come from each declaration.

The handlers run here against a recording Gitea double; the same commands against the
spec-checked stand-in and a real Synapse are in tests/e2e/test_e2e_forge.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from bot.commands import (
    ISSUE,
    POSITIVE,
    Arg,
    Body,
    CommandContext,
    CommandRegistry,
    CommandSpec,
    Flag,
    Text,
    UsageError,
    builtin,
    choice,
    forge,
    review,
)
from bot.commands import burn as burn_commands
from bot.commands import trust as trust_commands
from bot.commands.declare import tokenize
from bot.holds import HoldStore
from bot.pipeline.execute import execute
from bot.pipeline.message import Incoming
from bot.pipeline.parse import Command, parse
from fleetcore.forge.client import GiteaUnavailable, Invalid, NotFound
from fleetcore.projects import Project, ProjectStore

ROOM = "!project:example.org"


def spec(*params: Any) -> CommandSpec:
    async def handler(ctx: CommandContext, **values: Any) -> str:
        return ""

    return CommandSpec(("t",), "test", params, handler)


def test_words_quotes_and_apostrophes() -> None:
    words = [t.text for t in tokenize("""closed --label "needs review" it's ‘a b’ "open""")]
    assert words == ["closed", "--label", "needs review", "it's", "a b", '"open']


def test_tokenizer_is_linear_on_hostile_lines() -> None:
    # Every word opens a quote that never closes properly: a naive scan is quadratic.
    line = '"a ' * 20_000
    assert len(tokenize(line)) == 20_000


def test_flags_anywhere_and_title_kept_as_typed() -> None:
    s = spec(Text("title"), Flag("label", default="ready"), Body("body"))
    assert s.bind("Crash on start --label bug", "") == {
        "title": "Crash on start",
        "label": "bug",
        "body": "",
    }
    assert s.bind("Crash --label bug on   start", "b")["title"] == "Crash on   start"
    assert s.bind("--label=bug Crash", "")["title"] == "Crash"
    assert (
        s.bind("""Don't crash when it's "empty\"""", "")["title"]
        == """Don't crash when it's "empty\""""
    )
    assert s.bind('"Crash on start" --label bug', "")["title"] == "Crash on start"
    assert s.bind('Support "--dry-run" in the CLI', "")["title"] == 'Support "--dry-run" in the CLI'
    assert s.bind("Crash", "steps\n\n1. run")["body"] == "steps\n\n1. run"
    assert s.bind("Crash", "")["label"] == "ready"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("Title --lable bug", "Unknown option `--lable` (this command takes --label)."),
        ("Title --label", "--label needs a value."),
        ("Title --label a --label b", "--label is given twice."),
    ],
)
def test_option_errors(line: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        spec(Text("title"), Flag("label")).bind(line, "")
    assert err.value.room_message == message


def test_commands_without_options_take_dashes_as_text() -> None:
    s = spec(Arg("number", ISSUE), Text("text", with_body=True))
    assert s.bind("#3 run it with --verbose", "") == {"number": 3, "text": "run it with --verbose"}
    assert s.bind("3", "on the next line") == {"number": 3, "text": "on the next line"}


def test_typed_arguments_and_their_messages() -> None:
    s = spec(Arg("state", choice("open", "closed"), default="open"), Flag("page", POSITIVE, 1))
    assert s.bind("", "") == {"state": "open", "page": 1}
    assert s.bind("closed --page 2", "") == {"state": "closed", "page": 2}
    cases = {
        "shut": "State is open or closed.",
        "--page 0": "--page takes a positive number.",
        "--page two": "--page takes a positive number.",
        "open extra": "Unexpected `extra`.",
    }
    for line, message in cases.items():
        with pytest.raises(UsageError) as err:
            s.bind(line, "")
        assert err.value.room_message == message
    with pytest.raises(UsageError, match="`twelve` is not an issue number"):
        spec(Arg("n", ISSUE)).bind("twelve", "")
    with pytest.raises(UsageError, match=r"^Which issue\?$"):
        spec(Arg("n", ISSUE, missing="Which issue?")).bind("", "")


def test_errors_never_quote_a_long_word() -> None:
    word = "x" * 5000
    with pytest.raises(UsageError) as err:
        spec(Arg("n", ISSUE)).bind(word, "")
    assert len(err.value.room_message) < 100


def test_declaration_must_match_the_handler() -> None:
    registry = CommandRegistry()
    with pytest.raises(TypeError, match="declared ctx"):

        @registry.command("x", "x", Arg("name"))
        async def _x(ctx: CommandContext, other: str) -> str:
            return ""

    with pytest.raises(TypeError, match="one Text at most"):

        @registry.command("y", "y", Text("a"), Arg("b"))
        async def _y(ctx: CommandContext, a: str, b: str) -> str:
            return ""


# -- the real commands ------------------------------------------------------------------------


@dataclass
class Recorded:
    number: int
    title: str
    html_url: str


@dataclass
class RecordingGitea:
    """Records writes; `fail` makes the next call raise that error."""

    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    fail: Exception | None = None

    def __getattr__(self, name: str) -> Any:
        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            if self.fail is not None:
                raise self.fail
            if name == "create_issue":
                return Recorded(len(self.calls), args[2], "https://gitea/acme/web/issues/1")
            return None

        return call


@pytest.fixture
def gitea() -> RecordingGitea:
    return RecordingGitea()


@pytest.fixture
def registry(gitea: RecordingGitea, tmp_path: Path) -> Iterator[CommandRegistry]:
    projects = ProjectStore(tmp_path / "projects.json", {"web": Project("web", "acme/web", ROOM)})
    registry = CommandRegistry()
    builtin.register(registry)
    forge.register(registry, cast(Any, gitea), projects, "https://gitea")
    burn_commands.register(registry, cast(Any, object()), projects)
    trust_commands.register(registry, cast(Any, object()), cast(Any, None))
    holds = HoldStore(tmp_path / "holds.db")
    review.register(registry, holds)
    yield registry
    holds.close()


async def run(registry: CommandRegistry, text: str, room: str = ROOM) -> str:
    cmd = parse(text)
    assert isinstance(cmd, Command)
    msg = Incoming(room, "$event", "@op:example.org", 0, text, True, "DEV", True)
    return await execute(CommandContext(msg, cmd, cast(Any, None)), registry)


def test_usage_lines_come_from_the_declarations(registry: CommandRegistry) -> None:
    usage = {entry.usage() for entry in registry.entries()}
    assert {
        "!burn [--limit N] [--label L] [--tier T] | !burn status | !burn stop",
        "!issue Title [--label X]  (body on the following lines)",
        "!issues [open|closed] [--label X] [--page N]",
        "!project add NAME owner/repo | !project list",
        "!close #N [reason]",
        "!comment #N text",
        "!trust @user:server",
        "!help [COMMAND]",
        "!ping",
        "!review list | !review clear @user:server",
    } <= usage


async def test_help_lists_every_command_and_explains_one(registry: CommandRegistry) -> None:
    listing = await run(registry, "!help")
    for name in ("!help", "!ping", "!status", "!issue", "!burn", "!trust", "!project"):
        assert f"`{name}" in listing
    burn = await run(registry, "!help burn")
    assert "- `!burn stop`: withdraw the queued tasks" in burn
    assert "There is no command `!nope`." in await run(registry, "!help nope")


async def test_issue_flags_anywhere(registry: CommandRegistry, gitea: RecordingGitea) -> None:
    reply = await run(registry, "!issue Flaky --label bug upload test\nsteps")
    assert reply.startswith("Opened #1: Flaky upload test")
    assert gitea.calls == [
        ("create_issue", ("acme", "web", "Flaky upload test", "steps"), {"labels": ["bug"]})
    ]


@pytest.mark.parametrize("title", ["x" * 256, "é" * 128, "🔥" * 64])
async def test_a_title_over_gitea_limit_is_refused_and_not_echoed(
    registry: CommandRegistry, gitea: RecordingGitea, title: str
) -> None:
    reply = await run(registry, f"!issue {title}")
    assert "too long for Gitea" in reply and "255" in reply
    assert title[:10] not in reply
    assert gitea.calls == []
    assert (await run(registry, f"!issue {'x' * 255}")).startswith("Opened #1:")


async def test_gitea_errors_are_mapped_once(
    registry: CommandRegistry, gitea: RecordingGitea
) -> None:
    gitea.fail = GiteaUnavailable("cannot connect to https://gitea (ConnectError)")
    down = await run(registry, "!issue Gitea is down")
    assert down.startswith("Gitea is not reachable right now (cannot connect")
    assert down.endswith("Nothing was changed.")
    gitea.fail = Invalid("create issue was invalid (422): label", 422)
    assert (await run(registry, "!issues")).startswith("Gitea refused: create issue was invalid")
    gitea.fail = NotFound("issue not found", 404)
    assert await run(registry, "!close #9 done") == "acme/web has no issue #9."
    assert await run(registry, "!comment #9 hi") == "acme/web has no issue #9."


async def test_usage_errors_show_the_form_that_was_meant(registry: CommandRegistry) -> None:
    assert await run(registry, "!burn --limit 0") == (
        "--limit takes a positive number.\nUsage: `!burn [--limit N] [--label L] [--tier T]`"
    )
    tier = await run(registry, "!burn --tier a.*")
    assert "cannot be a NATS subject token" in tier
    assert await run(registry, "!project add web") == (
        "Give a name and a repo.\nUsage: `!project add NAME owner/repo`"
    )
    assert (await run(registry, "!project add web acme")).startswith("`acme` is not owner/name.")
    assert (await run(registry, "!trust sam")).startswith("`sam` is not a Matrix user id")
    elsewhere = await run(registry, "!issue Orphan", room="!other:example.org")
    assert elsewhere.startswith("This room is not a project room.")
    assert "\nUsage: `!issue Title [--label X]" in elsewhere
    assert (await run(registry, "!issue")).startswith("The issue needs a title.")
    assert (await run(registry, "!pnig")).startswith("Unknown command `!pnig`. Did you mean !ping")


async def test_a_bug_is_reported_by_type_only(
    registry: CommandRegistry, gitea: RecordingGitea
) -> None:
    gitea.fail = KeyError("secret detail")
    reply = await run(registry, "!issues")
    assert reply == "`!issues` failed: KeyError. Nothing else was changed."
