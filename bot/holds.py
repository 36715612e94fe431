"""Crisis holds in SQLite: who is held, since when, why (codes). Never the message text.

A hold must survive restarts (the person is still at risk after a deploy), so it lives on
disk with WAL journaling; the file is created 0600 because it says who was in crisis.
Only `clear` ends a hold (another operator's `!review clear`, or `fleet review clear` at
the machine); nothing a user sends does.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from fleetcore.db import open_private_db

if TYPE_CHECKING:
    from fleetcore.config import FleetConfig

_SCHEMA = """
CREATE TABLE IF NOT EXISTS holds (
    user_id    TEXT PRIMARY KEY,
    room_id    TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    level      TEXT NOT NULL,
    reasons    TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    events     INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS hold_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT NOT NULL,
    action     TEXT NOT NULL,
    by         TEXT,
    level      TEXT,
    at         REAL NOT NULL
);
"""

_RANK = {"none": 0, "concern": 1, "crisis": 2, "imminent": 3}


@dataclass(frozen=True)
class Hold:
    user_id: str
    room_id: str
    event_id: str
    level: str
    reasons: tuple[str, ...]
    created_at: float
    updated_at: float
    events: int


def holds_path(cfg: FleetConfig) -> Path:
    """Where the bot keeps its holds: `safety.holds_db`, else `<state_dir>/bot/holds.db`."""
    if cfg.safety.holds_db:
        return Path(cfg.safety.holds_db).expanduser()
    return cfg.bot_dir / "holds.db"


class HoldStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._db = open_private_db(self.path, _SCHEMA, synchronous="FULL")

    def hold(
        self,
        user_id: str,
        room_id: str,
        event_id: str,
        level: str,
        reasons: list[str] | tuple[str, ...],
    ) -> None:
        """Hold a user, or refresh an existing hold (keeping the highest level seen)."""
        now = time.time()
        codes = json.dumps(list(reasons))
        with self._lock:
            row = self._db.execute(
                "SELECT level FROM holds WHERE user_id = ?", (user_id,)
            ).fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO holds (user_id, room_id, event_id, level, reasons, created_at,"
                    " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (user_id, room_id, event_id, level, codes, now, now),
                )
            else:
                top = level if _RANK.get(level, 0) >= _RANK.get(row[0], 0) else row[0]
                self._db.execute(
                    "UPDATE holds SET room_id = ?, event_id = ?, level = ?, reasons = ?,"
                    " updated_at = ?, events = events + 1 WHERE user_id = ?",
                    (room_id, event_id, top, codes, now, user_id),
                )
            self._db.execute(
                "INSERT INTO hold_log (user_id, action, by, level, at) VALUES (?, 'hold', NULL,"
                " ?, ?)",
                (user_id, level, now),
            )

    def is_held(self, user_id: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM holds WHERE user_id = ?", (user_id,)).fetchone()
        return row is not None

    def get(self, user_id: str) -> Hold | None:
        with self._lock:
            row = self._db.execute(
                "SELECT user_id, room_id, event_id, level, reasons, created_at, updated_at,"
                " events FROM holds WHERE user_id = ?",
                (user_id,),
            ).fetchone()
        return _hold(row) if row else None

    def clear(self, user_id: str, by: str) -> bool:
        """Lift a hold; returns False if the user was not held."""
        with self._lock:
            cur = self._db.execute("DELETE FROM holds WHERE user_id = ?", (user_id,))
            if cur.rowcount:
                self._db.execute(
                    "INSERT INTO hold_log (user_id, action, by, level, at) VALUES"
                    " (?, 'clear', ?, NULL, ?)",
                    (user_id, by, time.time()),
                )
            return cur.rowcount > 0

    def list(self) -> list[Hold]:
        with self._lock:
            rows = self._db.execute(
                "SELECT user_id, room_id, event_id, level, reasons, created_at, updated_at,"
                " events FROM holds ORDER BY created_at, user_id"
            ).fetchall()
        return [_hold(r) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _hold(row: tuple[object, ...]) -> Hold:
    user_id, room_id, event_id, level, reasons, created, updated, events = row
    return Hold(
        user_id=str(user_id),
        room_id=str(room_id),
        event_id=str(event_id),
        level=str(level),
        reasons=tuple(json.loads(str(reasons))),
        created_at=float(created),  # type: ignore[arg-type]
        updated_at=float(updated),  # type: ignore[arg-type]
        events=int(events),  # type: ignore[call-overload]
    )


def describe_holds(rows: list[Hold]) -> str:
    """The hold list as `!review list` and `fleet review list` show it (never any text)."""
    if not rows:
        return "No one is on hold."
    lines = [f"{len(rows)} on hold:"]
    for h in rows:
        when = datetime.fromtimestamp(h.created_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines.append(
            f"- {h.user_id}: {h.level} since {when} in {h.room_id} "
            f"({', '.join(h.reasons) or 'no reason codes'})"
        )
    return "\n".join(lines)
