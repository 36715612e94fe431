"""What the bot must remember across restarts, besides nio's own crypto store.

The session (device id + access token) is what makes a restart reuse the same device. Each
message the sync loop queues is written to the inbox (its event as the homeserver sent it:
ciphertext in an encrypted room) before the sync token moves past it, and leaves the inbox
when the pipeline is through with it, recorded as handled in the same transaction. So a
crash never loses a queued message and a restart never handles one twice.

The outbox is the same promise for what the bot says: each message's transaction id is
written before the send (`bot.matrix.sender`), so a restart re-sends it with the same id and
the homeserver answers with the first event instead of posting it twice. Its content stays
only until the homeserver has accepted it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from fleetcore.db import open_private_db
from fleetcore.secrets import write_private


@dataclass(frozen=True)
class Session:
    user_id: str
    device_id: str
    access_token: str


def load_session(path: Path) -> Session | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return Session(data["user_id"], data["device_id"], data["access_token"])


def save_session(path: Path, session: Session) -> None:
    write_private(
        path,
        json.dumps(
            {
                "user_id": session.user_id,
                "device_id": session.device_id,
                "access_token": session.access_token,
            }
        ),
    )


_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS handled (event_id TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS inbox (
    event_id TEXT PRIMARY KEY, room_id TEXT NOT NULL, source TEXT NOT NULL, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS joined (room_id TEXT PRIMARY KEY, at_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    txn_id TEXT PRIMARY KEY, room_id TEXT NOT NULL, content TEXT, reach TEXT,
    event_id TEXT, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS known_devices (
    user_id TEXT NOT NULL, device_id TEXT NOT NULL, ed25519 TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);
"""


class BotState:
    """SQLite in WAL mode: each write is durable and cheap enough for the message path."""

    def __init__(self, path: Path) -> None:
        self._db = open_private_db(path, _SCHEMA, synchronous="NORMAL")

    def close(self) -> None:
        self._db.close()

    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO kv(key, value) VALUES (?, ?)", (key, value))

    @property
    def sync_token(self) -> str | None:
        return self.get("sync_token")

    def save_sync_token(self, token: str) -> None:
        self.put("sync_token", token)

    def mark_handled(self, event_id: str) -> bool:
        """Record an event as handled; False if it already was (then do nothing again)."""
        cur = self._db.execute(
            "INSERT OR IGNORE INTO handled(event_id, at) VALUES (?, ?)", (event_id, time.time())
        )
        return cur.rowcount == 1

    def was_handled(self, event_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM handled WHERE event_id=?", (event_id,)).fetchone()
        return row is not None

    def queue(self, event_id: str, room_id: str, source: dict[str, object]) -> bool:
        """Put an event in the inbox; False if it is there already or was handled."""
        if self.was_handled(event_id):
            return False
        cur = self._db.execute(
            "INSERT OR IGNORE INTO inbox(event_id, room_id, source, at) VALUES (?, ?, ?, ?)",
            (event_id, room_id, json.dumps(source), time.time()),
        )
        return cur.rowcount == 1

    def finish(self, event_id: str) -> None:
        """The pipeline is through with an event: out of the inbox, handled for good."""
        self._db.execute("BEGIN")
        try:
            self._db.execute("DELETE FROM inbox WHERE event_id=?", (event_id,))
            self.mark_handled(event_id)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def inbox(self) -> list[tuple[str, dict[str, object]]]:
        """Queued events left by an earlier run, oldest first: (room_id, event source)."""
        rows = self._db.execute("SELECT room_id, source FROM inbox ORDER BY at").fetchall()
        return [(str(room), json.loads(source)) for room, source in rows]

    def prune_handled(self, older_than_s: float = 30 * 86400) -> None:
        cutoff = time.time() - older_than_s
        self._db.execute("DELETE FROM handled WHERE at < ?", (cutoff,))
        self._db.execute("DELETE FROM outbox WHERE event_id IS NOT NULL AND at < ?", (cutoff,))

    # -- outbox ------------------------------------------------------------------------

    def stage_send(
        self, txn_id: str, room_id: str, content: dict[str, object], reach: str | None
    ) -> str | None:
        """Record a message about to be sent; its event id when it was sent already."""
        row = self._db.execute("SELECT event_id FROM outbox WHERE txn_id=?", (txn_id,)).fetchone()
        if row is not None and row[0] is not None:
            return str(row[0])
        self._db.execute(
            "INSERT OR REPLACE INTO outbox(txn_id, room_id, content, reach, event_id, at)"
            " VALUES (?, ?, ?, ?, NULL, ?)",
            (txn_id, room_id, json.dumps(content), reach, time.time()),
        )
        return None

    def send_done(self, txn_id: str, event_id: str) -> None:
        """Accepted by the homeserver: keep the id (a repeat is answered here), not the text."""
        self._db.execute(
            "UPDATE outbox SET event_id=?, content=NULL WHERE txn_id=?", (event_id, txn_id)
        )

    def send_dropped(self, txn_id: str) -> None:
        """Refused for good (not a rate limit): nothing to re-send on the next start."""
        self._db.execute("DELETE FROM outbox WHERE txn_id=? AND event_id IS NULL", (txn_id,))

    def unsent(self) -> list[tuple[str, str, dict[str, object], str | None]]:
        """Messages an earlier run staged but never saw accepted, oldest first."""
        rows = self._db.execute(
            "SELECT txn_id, room_id, content, reach FROM outbox"
            " WHERE event_id IS NULL ORDER BY at, rowid"
        ).fetchall()
        return [(str(t), str(r), json.loads(c), reach) for t, r, c, reach in rows]

    def record_join(self, room_id: str, at_ms: int) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO joined(room_id, at_ms) VALUES (?, ?)", (room_id, at_ms)
        )

    def joined_at(self, room_id: str) -> int | None:
        row = self._db.execute("SELECT at_ms FROM joined WHERE room_id=?", (room_id,)).fetchone()
        return None if row is None else int(row[0])

    def remember_device(self, user_id: str, device_id: str, ed25519: str) -> bool:
        """True when this device is new to us (so the room can be told)."""
        cur = self._db.execute(
            "INSERT OR IGNORE INTO known_devices(user_id, device_id, ed25519) VALUES (?, ?, ?)",
            (user_id, device_id, ed25519),
        )
        return cur.rowcount == 1

    def has_devices_of(self, user_id: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM known_devices WHERE user_id=? LIMIT 1", (user_id,)
        ).fetchone()
        return row is not None
