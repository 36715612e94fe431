"""The production homeserver config says what the README promises."""

import tomllib
from pathlib import Path

CONDUIT = Path(__file__).resolve().parents[2] / "conduit"


def test_conduit_toml_is_safe_by_default() -> None:
    cfg = tomllib.loads((CONDUIT / "conduit.toml").read_text())["global"]
    assert cfg["server_name"]
    assert cfg["database_path"] and cfg["database_backend"] in ("rocksdb", "sqlite")
    assert cfg["address"] == "127.0.0.1"
    assert isinstance(cfg["port"], int)
    # registration by token only
    assert cfg["allow_registration"] is True and cfg["registration_token"]
    assert cfg["allow_federation"] is False


def test_conduit_readme_covers_start_register_and_security() -> None:
    text = (CONDUIT / "README.md").read_text().lower()
    for needle in ("start conduit", "register", "127.0.0.1", "reverse proxy", "tls", "pin"):
        assert needle in text, needle
