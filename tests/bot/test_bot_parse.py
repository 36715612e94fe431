import pytest

from bot.commands.declare import tokenize
from bot.pipeline.parse import BadCommand, Command, NotACommand, parse


def words(line: str) -> list[str]:
    return [t.text for t in tokenize(line)]


def test_plain_text_is_not_a_command() -> None:
    assert parse("hello there") == NotACommand()
    assert parse("  ping!") == NotACommand()


def test_name_is_lowercased_and_args_split() -> None:
    cmd = parse("!PING")
    assert isinstance(cmd, Command) and cmd.name == "ping" and cmd.argline == ""
    cmd = parse('!issues closed --label "needs review"')
    assert isinstance(cmd, Command)
    assert words(cmd.argline) == ["closed", "--label", "needs review"]


def test_body_lines_are_kept_verbatim() -> None:
    cmd = parse("!issue Crash on start\n## Steps\n- run `fleet up`\n\n**bold**")
    assert isinstance(cmd, Command)
    assert cmd.argline == "Crash on start"
    assert cmd.body == "## Steps\n- run `fleet up`\n\n**bold**"


@pytest.mark.parametrize("text", ["!", "!   ", "!!!", "!9lives", "!a.b"])
def test_bad_names_are_reported(text: str) -> None:
    assert isinstance(parse(text), BadCommand)


def test_unbalanced_quotes_are_plain_characters() -> None:
    cmd = parse("!comment #3 it's \"broken")
    assert isinstance(cmd, Command)
    assert words(cmd.argline) == ["#3", "it's", '"broken']


def test_command_repr_hides_text() -> None:
    cmd = parse("!issue secret title\nsecret body")
    assert "secret" not in repr(cmd)
