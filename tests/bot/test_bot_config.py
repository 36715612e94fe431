"""Configuration: the example loads, and each class of mistake names its key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fleet.cli import main
from fleetcore.config import ConfigError, check_secrets, load_config, parse_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config.example.yaml"


def minimal() -> dict:
    return {
        "matrix": {
            "homeserver": "http://127.0.0.1:8008",
            "user_id": "@hermes:localhost",
            "password": {"env": "HERMES_MATRIX_PASSWORD"},
        },
        "operators": ["@alice:localhost"],
    }


def problems(data: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return [str(p) for p in info.value.problems]


def test_example_loads_and_documents_every_top_level_key() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.operators
    text = EXAMPLE.read_text()
    for key in type(cfg).model_fields:
        documented = f"\n{key}:" in text or f"\n# {key}:" in text or text.startswith(f"{key}:")
        assert documented, f"{key} undocumented"
    # every key line in the example carries a comment above or beside it
    raw = yaml.safe_load(text)
    assert set(raw) <= set(type(cfg).model_fields)


def test_minimal_config_is_enough() -> None:
    cfg = parse_config(minimal())
    assert cfg.matrix.trust.policy.value == "identity-tofu"
    assert cfg.safety.locale


def test_unknown_key_is_an_error_with_its_path() -> None:
    data = minimal()
    data["matrix"]["homeservr"] = "x"
    data["operatorz"] = []
    found = problems(data)
    assert "matrix.homeservr: unknown key" in found
    assert "operatorz: unknown key" in found


def test_bad_url_and_user_ids() -> None:
    data = minimal()
    data["matrix"]["homeserver"] = "localhost:8008"
    data["operators"] = ["alice"]
    found = problems(data)
    assert any(p.startswith("matrix.homeserver: not a URL") for p in found)
    assert any(p.startswith("operators: not a Matrix user ID") for p in found)


def test_missing_required_keys() -> None:
    found = problems({"operators": ["@a:b"]})
    assert "matrix: required key is missing" in found


def test_secret_refs_need_exactly_one_source() -> None:
    data = minimal()
    data["matrix"]["password"] = {"env": "A", "file": "/tmp/x"}
    assert any("exactly one of `env` or `file`" in p for p in problems(data))
    data["matrix"]["password"] = "hunter2"
    assert any(p.startswith("matrix.password") for p in problems(data))


def test_missing_secret_is_reported_by_where_it_lives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HERMES_MATRIX_PASSWORD", raising=False)
    cfg = parse_config(minimal())
    assert [str(p) for p in check_secrets(cfg)] == [
        "matrix.password: secret not available (env:HERMES_MATRIX_PASSWORD)"
    ]
    monkeypatch.setenv("HERMES_MATRIX_PASSWORD", "s3cret")
    assert check_secrets(cfg) == []


def test_top_level_must_be_a_mapping() -> None:
    assert problems(["a"]) == ["the top level must be a mapping of keys"]


def test_config_check_cli_prints_every_problem_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = minimal()
    data["matrix"]["homeserver"] = "nope"
    data["extra"] = 1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["config", "check", str(path)]) == 2
    out = capsys.readouterr().out
    assert "matrix.homeserver: not a URL" in out
    assert "extra: unknown key" in out


def test_config_check_cli_reports_bad_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("matrix: [unclosed\n")
    assert main(["config", "check", str(path)]) == 2
    assert "not valid YAML" in capsys.readouterr().out


def test_config_check_cli_accepts_the_example() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fleet.cli", "config", "check", str(EXAMPLE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok" in result.stdout


def test_forge_sections_are_validated_with_their_key_paths() -> None:
    data = minimal()
    data["projects"] = {"web": {"repo": "acme/web"}}
    assert any("projects" in p and "gitea" in p for p in problems(data))
    data["gitea"] = {"url": "gitea.local", "token": {"env": "T"}}
    data["projects"] = {"web": {"repo": "not-a-repo", "room": "web", "privacy": "secret"}}
    found = problems(data)
    assert any(p.startswith("gitea.url") and "not a URL" in p for p in found), found
    assert any(p.startswith("projects.web.repo") for p in found), found
    assert any(p.startswith("projects.web.room") for p in found), found
    assert any(p.startswith("projects.web.privacy") for p in found), found


def test_gitea_secrets_are_checked_by_where_they_live(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HERMES_GITEA_TOKEN_T", raising=False)
    monkeypatch.setenv("HERMES_MATRIX_PASSWORD", "x")
    data = minimal()
    data["gitea"] = {
        "url": "https://gitea.example.org",
        "token": {"env": "HERMES_GITEA_TOKEN_T"},
        "webhook": {"secret": {"env": "HERMES_GITEA_TOKEN_T"}},
    }
    paths = [p.path for p in check_secrets(parse_config(data))]
    assert paths == ["gitea.token", "gitea.webhook.secret"]


def test_operators_room_takes_ids_of_every_room_version_and_aliases() -> None:
    # Room version 12 (Synapse's default now) IDs have no server part.
    for room in ("!8IzR_xAo4jaV2o9jxBpOVGp1BZx-qqXMtbh1ZAkc4Ic", "!abc:localhost", "#ops:hs"):
        assert parse_config({**minimal(), "operators_room": room}).operators_room == room
    for bad in ("ops", "#ops", "!a b:hs"):
        assert any("operators_room" in p for p in problems({**minimal(), "operators_room": bad}))


def test_safety_people_locales_are_checked_and_named() -> None:
    data = minimal()
    data["safety"] = {"people": {"@ana:localhost": "pt-BR"}}
    assert parse_config(data).safety.locale_for("@ana:localhost") == "pt-BR"
    data["safety"] = {"people": {"@ana:localhost": "portuguese"}}
    [problem] = problems(data)
    assert "safety.people" in problem and "portuguese" in problem
    data["safety"] = {"people": {"ana": "pt-BR"}}
    [problem] = problems(data)
    assert "not a Matrix user id" in problem
