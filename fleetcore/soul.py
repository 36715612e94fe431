"""SOUL.md: the fleet's voice, the system prompt on every model backend."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Soul:
    text: str
    sha256: str

    @classmethod
    def load(cls, path: Path) -> Soul:
        data = path.read_bytes()
        return cls(data.decode("utf-8"), hashlib.sha256(data).hexdigest())
