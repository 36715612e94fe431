"""The config loader against arbitrary text and YAML (issue #14): a FleetConfig or a ConfigError.

The file is the operator's own, but `fleet config check` is how they find out what is
wrong with it, so a traceback there (RecursionError, a date PyYAML cannot build) is a
defect, and so is a file that takes minutes to refuse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from fleetcore.config import (
    MAX_ALIASES,
    MAX_CONFIG_BYTES,
    MAX_NESTING,
    ConfigError,
    FleetConfig,
    config_from_text,
    load_config,
)
from tests.hostile.strategies import json_values, mutated, texts

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"
MINIMAL = {
    "matrix": {
        "homeserver": "https://matrix.example.org",
        "user_id": "@hermes:example.org",
        "password": {"env": "HERMES_PASSWORD"},
    },
    "operators": ["@op:example.org"],
    "gitea": {
        "url": "https://gitea.example.org",
        "token": {"env": "GITEA_TOKEN"},
        "webhook": {"secret": {"env": "HOOK"}},
    },
    "projects": {"fleet": {"repo": "ops/fleet", "room": "#fleet:example.org"}},
}


def loads(text: str) -> FleetConfig | ConfigError:
    try:
        return config_from_text(text)
    except ConfigError as exc:
        assert exc.problems and all(str(p) for p in exc.problems)
        return exc


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("x: " + "[" * 5000 + "]" * 5000, "nested more than"),
        ("x: " + "{a: " * 5000, "nested more than"),
        ("- " * 100_000 + "x", "nested more than"),
        ("".join(" " * i + f"k{i}:\n" for i in range(60)), "nested more than"),
        ("x: 2001-02-30", "cannot read"),  # PyYAML: ValueError, not a YAMLError
        ("x: !!int abc", "cannot read"),
        ("x: !!float abc", "cannot read"),
        ("x: " + "9" * 5000, "cannot read"),  # past Python's int digit limit
        ("a: &a [x, x]\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]", "aliases"),
        ("x: '\ud800'", "not valid YAML"),
        ("operators: &a [*a]", "operators[0]"),  # a list that contains itself
    ],
    ids=[
        "deep-flow-lists",
        "deep-flow-maps",
        "deep-compact-lists",
        "deep-block-maps",
        "impossible-date",
        "int-tag-on-a-word",
        "float-tag-on-a-word",
        "5000-digit-int",
        "alias-bomb",
        "lone-surrogate",
        "self-containing-list",
    ],
)
def test_hostile_yaml_is_a_config_error(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_text(text)
    assert says in str(caught.value)


def test_hostile_files_are_config_errors(tmp_path: Path) -> None:
    """Through load_config, as `fleet config check` and `fleet up` read them."""
    cases = {
        "not-utf8.yaml": b"matrix: \xff\xfe\n",
        "deep.yaml": b"x: " + b"[" * 100_000,
        "date.yaml": b"x: 2001-02-30\n",
        "huge.yaml": b"# " + b"x" * MAX_CONFIG_BYTES + b"\n",
    }
    for name, raw in cases.items():
        path = tmp_path / name
        path.write_bytes(raw)
        with pytest.raises(ConfigError):
            load_config(path)


def test_nesting_up_to_the_limit_is_still_read() -> None:
    nested: Any = "x"
    for _ in range(MAX_NESTING - 1):
        nested = [nested]
    with pytest.raises(ConfigError) as caught:
        config_from_text(yaml.safe_dump({"extra": nested}))
    assert "unknown key" in str(caught.value)  # read in full, then refused by the schema


def test_the_example_and_a_minimal_config_load() -> None:
    assert isinstance(config_from_text(EXAMPLE.read_text()), FleetConfig)
    assert isinstance(config_from_text(yaml.safe_dump(MINIMAL)), FleetConfig)


@given(text=texts | st.text(max_size=2000))
def test_arbitrary_text_gives_a_config_or_a_config_error(text: str) -> None:
    loads(text)


@given(value=json_values)
def test_arbitrary_yaml_data_gives_a_config_or_a_config_error(value: Any) -> None:
    loads(yaml.safe_dump(value, allow_unicode=True))


@given(value=mutated(MINIMAL))
def test_mutations_of_a_valid_config_give_a_config_or_a_config_error(value: Any) -> None:
    loads(yaml.safe_dump(value, allow_unicode=True))


@given(lines=st.lists(st.sampled_from(EXAMPLE.read_text().splitlines()), max_size=40))
def test_shuffled_lines_of_the_example_give_a_config_or_a_config_error(lines: list[str]) -> None:
    """YAML-shaped text with the real keys, in orders and indents nobody wrote."""
    loads("\n".join(line.removeprefix("# ") for line in lines))
