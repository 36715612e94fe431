"""What the bot knows about burns, in SQLite, so a restart in the middle of one loses nothing.

A result is stored once per (burn, issue): a redelivered result finds its row and is only
acknowledged. Each room message that reports results gets its transaction id written here
*before* it is sent, so re-sending it after a crash is answered by the homeserver with the
first event instead of a second message: every result is reported exactly once.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from bot.burn.progress import BurnProgress, ResultLine
from fleetcore.db import open_private_db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS burn (
    id TEXT PRIMARY KEY, project TEXT, room TEXT, repo_url TEXT, tier TEXT,
    total INTEGER, started REAL, progress_event TEXT, stopped INTEGER DEFAULT 0,
    withdrawn INTEGER DEFAULT 0, finished REAL, issues TEXT
);
CREATE TABLE IF NOT EXISTS result (
    burn TEXT, issue INTEGER, outcome TEXT, summary TEXT, url TEXT, wolf TEXT,
    provider TEXT, digest TEXT, PRIMARY KEY (burn, issue)
);
CREATE TABLE IF NOT EXISTS digest (
    txn TEXT PRIMARY KEY, burn TEXT, body TEXT, sent REAL
);
"""


@dataclass(frozen=True)
class BurnRow:
    id: str
    project: str
    room: str
    repo_url: str
    tier: str
    total: int
    started: float
    progress_event: str | None
    stopped: bool
    withdrawn: int
    finished: float | None

    @property
    def repo(self) -> str:
        """owner/name: a Gitea repo URL always ends with them, whatever the base URL."""
        return "/".join(self.repo_url.rsplit("/", 2)[-2:])


class BurnStore:
    def __init__(self, path: Path) -> None:
        self._db = open_private_db(path, _SCHEMA)

    def close(self) -> None:
        self._db.close()

    # -- burns -------------------------------------------------------------------------

    def create(self, row: BurnRow, issues: list[int]) -> None:
        self._db.execute(
            "INSERT INTO burn VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                row.id,
                row.project,
                row.room,
                row.repo_url,
                row.tier,
                row.total,
                row.started,
                row.progress_event,
                int(row.stopped),
                row.withdrawn,
                row.finished,
                json.dumps(issues),
            ),
        )

    def set_progress_event(self, burn_id: str, event_id: str) -> None:
        self._db.execute("UPDATE burn SET progress_event = ? WHERE id = ?", (event_id, burn_id))

    def mark_stopped(self, burn_id: str, withdrawn: int) -> None:
        self._db.execute(
            "UPDATE burn SET stopped = 1, withdrawn = withdrawn + ? WHERE id = ?",
            (withdrawn, burn_id),
        )

    def mark_finished(self, burn_id: str) -> None:
        self._db.execute("UPDATE burn SET finished = ? WHERE id = ?", (time.time(), burn_id))

    def burn(self, burn_id: str) -> BurnRow | None:
        row = self._db.execute(
            "SELECT id, project, room, repo_url, tier, total, started, progress_event, stopped,"
            " withdrawn, finished FROM burn WHERE id = ?",
            (burn_id,),
        ).fetchone()
        if row is None:
            return None
        return BurnRow(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            row[6],
            row[7],
            bool(row[8]),
            row[9],
            row[10],
        )

    def issues(self, burn_id: str) -> list[int]:
        row = self._db.execute("SELECT issues FROM burn WHERE id = ?", (burn_id,)).fetchone()
        return [] if row is None else list(json.loads(row[0]))

    def running(self) -> list[BurnRow]:
        ids = [
            r[0]
            for r in self._db.execute(
                "SELECT id FROM burn WHERE finished IS NULL ORDER BY started"
            ).fetchall()
        ]
        return [b for b in (self.burn(i) for i in ids) if b is not None]

    def latest_in_room(self, room: str) -> BurnRow | None:
        row = self._db.execute(
            "SELECT id FROM burn WHERE room = ? ORDER BY started DESC LIMIT 1", (room,)
        ).fetchone()
        return None if row is None else self.burn(row[0])

    # -- results -----------------------------------------------------------------------

    def add_result(self, burn_id: str, line: ResultLine) -> bool:
        """False when this issue's result was stored before (a redelivery)."""
        cur = self._db.execute(
            "INSERT OR IGNORE INTO result VALUES (?,?,?,?,?,?,?,NULL)",
            (
                burn_id,
                line.issue_number,
                line.outcome,
                line.summary,
                line.url,
                line.wolf,
                line.provider,
            ),
        )
        return cur.rowcount == 1

    def progress(self, burn_id: str) -> BurnProgress | None:
        """Rebuild the in-memory progress; undigested results stay pending for the digest."""
        b = self.burn(burn_id)
        if b is None:
            return None
        p = BurnProgress(
            b.id,
            b.project,
            b.repo_url,
            b.total,
            b.started,
            stopped=b.stopped,
            withdrawn=b.withdrawn,
        )
        for issue, outcome, summary, url, wolf, provider, digest in self._db.execute(
            "SELECT issue, outcome, summary, url, wolf, provider, digest FROM result"
            " WHERE burn = ? ORDER BY rowid",
            (burn_id,),
        ):
            line = ResultLine(issue, outcome, summary, url, wolf, provider)
            p.add(line, digested=digest is not None)
        return p

    def undigested(self, burn_id: str) -> list[int]:
        return [
            r[0]
            for r in self._db.execute(
                "SELECT issue FROM result WHERE burn = ? AND digest IS NULL ORDER BY rowid",
                (burn_id,),
            )
        ]

    # -- digests (the messages that report results) ------------------------------------

    def prepare_digest(self, burn_id: str, txn: str, body: str, issues: list[int]) -> None:
        """Claim results for a digest before sending it: a crash re-sends the same txn."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("INSERT INTO digest VALUES (?,?,?,NULL)", (txn, burn_id, body))
            self._db.executemany(
                "UPDATE result SET digest = ? WHERE burn = ? AND issue = ?",
                [(txn, burn_id, i) for i in issues],
            )

    def unsent_digests(self, burn_id: str) -> list[tuple[str, str]]:
        return [
            (r[0], r[1])
            for r in self._db.execute(
                "SELECT txn, body FROM digest WHERE burn = ? AND sent IS NULL ORDER BY rowid",
                (burn_id,),
            )
        ]

    def digest_sent(self, txn: str) -> None:
        self._db.execute("UPDATE digest SET sent = ? WHERE txn = ?", (time.time(), txn))

    def digested(self, burn_id: str, issue: int) -> bool:
        """Whether the result is in a digest that the homeserver accepted."""
        row = self._db.execute(
            "SELECT d.sent FROM result r JOIN digest d ON r.digest = d.txn"
            " WHERE r.burn = ? AND r.issue = ?",
            (burn_id, issue),
        ).fetchone()
        return bool(row and row[0])

    def messages_sent(self, burn_id: str) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM digest WHERE burn = ? AND sent IS NOT NULL", (burn_id,)
        ).fetchone()
        return int(row[0])
