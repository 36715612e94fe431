"""Hold store: persistence, clearing, permissions, no text."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bot.holds import HoldStore


def test_hold_survives_reopen_and_clear(tmp_path: Path) -> None:
    path = tmp_path / "state" / "holds.db"
    store = HoldStore(path)
    assert not store.is_held("@a:hs")
    store.hold("@a:hs", "!r:hs", "$e1", "crisis", ["ideation"])
    assert store.is_held("@a:hs")
    store.close()

    again = HoldStore(path)
    assert again.is_held("@a:hs")
    [h] = again.list()
    assert (h.user_id, h.room_id, h.event_id, h.level, h.reasons) == (
        "@a:hs",
        "!r:hs",
        "$e1",
        "crisis",
        ("ideation",),
    )
    assert h.created_at > 0
    assert not again.clear("@b:hs", by="@op:hs")
    assert again.clear("@a:hs", by="@op:hs")
    assert not again.is_held("@a:hs") and again.list() == []
    again.close()
    assert not HoldStore(path).is_held("@a:hs")


def test_rehold_keeps_highest_level(tmp_path: Path) -> None:
    store = HoldStore(tmp_path / "h.db")
    store.hold("@a:hs", "!r:hs", "$e1", "imminent", ["in_progress"])
    store.hold("@a:hs", "!r:hs", "$e2", "crisis", ["ideation"])
    h = store.get("@a:hs")
    assert h is not None and h.level == "imminent" and h.events == 2 and h.event_id == "$e2"
    store.close()


def test_file_is_private_and_has_no_text(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    store = HoldStore(path)
    store.hold("@a:hs", "!r:hs", "$e1", "crisis", ["method"])
    store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"@a:hs" in raw and b"method" in raw
    # The API takes no text at all, so none can be stored.
    assert "text" not in HoldStore.hold.__code__.co_varnames


def test_describe_holds_lists_codes_never_text(tmp_path: Path) -> None:
    from bot.holds import describe_holds

    store = HoldStore(tmp_path / "h.db")
    assert describe_holds(store.list()) == "No one is on hold."
    store.hold("@a:hs", "!r:hs", "$e1", "imminent", ["intent", "imminent"])
    text = describe_holds(store.list())
    assert text.startswith("1 on hold:") and "@a:hs: imminent since" in text
    assert "intent, imminent" in text
    store.close()


def _config(tmp_path: Path) -> Path:
    import yaml

    path = tmp_path / "config.yaml"
    data = {
        "state_dir": str(tmp_path / "state"),
        "matrix": {
            "homeserver": "http://127.0.0.1:8008",
            "user_id": "@hermes:localhost",
            "password": {"env": "UNUSED_PASSWORD"},
        },
        "operators": ["@alice:localhost"],
    }
    path.write_text(yaml.safe_dump(data))
    return path


def test_fleet_review_at_the_machine_lists_and_clears(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fleet.cli import main

    cfg = _config(tmp_path)
    assert main(["review", "list", "--config", str(cfg)]) == 1  # no bot state yet
    assert "no holds database" in capsys.readouterr().err
    store = HoldStore(tmp_path / "state" / "bot" / "holds.db")  # where the bot keeps it
    store.hold("@alice:localhost", "!r:hs", "$e1", "crisis", ["ideation"])

    assert main(["review", "list", "--config", str(cfg)]) == 0
    assert "@alice:localhost: crisis" in capsys.readouterr().out
    assert main(["review", "clear", "not-a-user", "--config", str(cfg)]) == 2
    capsys.readouterr()
    assert main(["review", "clear", "@alice:localhost", "--config", str(cfg)]) == 0
    assert "Hold lifted" in capsys.readouterr().out
    # The bot's open store sees it at once: it reads the file for every message.
    assert not store.is_held("@alice:localhost")
    assert main(["review", "clear", "@alice:localhost", "--config", str(cfg)]) == 1
    store.close()


async def test_review_command_refuses_to_lift_your_own_hold(tmp_path: Path) -> None:
    from bot.commands import CommandContext, CommandRegistry, review
    from bot.pipeline.execute import execute
    from bot.pipeline.message import Incoming
    from bot.pipeline.parse import Command, parse

    store = HoldStore(tmp_path / "h.db")
    registry = CommandRegistry()
    review.register(registry, store)
    store.hold("@a:hs", "!r:hs", "$e1", "crisis", ["ideation"])

    async def run(sender: str, text: str) -> str:
        cmd = parse(text)
        assert isinstance(cmd, Command)
        msg = Incoming("!r:hs", "$e2", sender, 0, text, True, "DEV", True)
        return await execute(CommandContext(msg, cmd, None), registry)  # type: ignore[arg-type]

    own = await run("@a:hs", "!review clear @a:hs")
    assert "can't lift your own hold" in own and "fleet review clear @a:hs" in own
    assert store.is_held("@a:hs")
    assert "Hold lifted" in await run("@b:hs", "!review clear @a:hs")
    assert not store.is_held("@a:hs")
    store.close()
