import stat
from pathlib import Path

from bot.matrix.state import BotState, Session, load_session, save_session


def test_session_roundtrip_is_private(tmp_path: Path) -> None:
    path = tmp_path / "bot" / "session.json"
    assert load_session(path) is None
    save_session(path, Session("@b:localhost", "DEV1", "tok"))
    assert load_session(path) == Session("@b:localhost", "DEV1", "tok")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_state_survives_reopen(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    state = BotState(db)
    state.save_sync_token("s1")
    assert state.mark_handled("$a")
    assert not state.mark_handled("$a")
    state.record_join("!r:x", 100)
    state.record_join("!r:x", 200)  # the first join time stays
    state.close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    state = BotState(db)
    assert state.sync_token == "s1"
    assert state.was_handled("$a") and not state.was_handled("$b")
    assert state.joined_at("!r:x") == 100


def test_new_device_detection(tmp_path: Path) -> None:
    state = BotState(tmp_path / "bot.db")
    assert not state.has_devices_of("@op:x")
    assert state.remember_device("@op:x", "D1", "k1")
    assert not state.remember_device("@op:x", "D1", "k1")
    assert state.has_devices_of("@op:x")
