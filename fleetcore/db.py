"""SQLite files the bot keeps (state, holds, burns, webhook outbox): private and durable.

One opener so every store gets the same care: the file is created 0600 before SQLite
writes to it (no window with umask permissions), WAL journaling, and the WAL's side files
made private too.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Literal


def open_private_db(
    path: Path, schema: str, synchronous: Literal["NORMAL", "FULL"] = "FULL"
) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.executescript(schema)
    for suffix in ("-wal", "-shm"):
        side = Path(f"{path}{suffix}")
        if side.exists():
            os.chmod(side, 0o600)
    return db
