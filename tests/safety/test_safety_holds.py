"""Hold store: persistence, clearing, permissions, no text."""

from __future__ import annotations

import stat
from pathlib import Path

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
