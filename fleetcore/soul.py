"""SOUL.md: the fleet's voice, the system prompt on every model backend."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from fleetcore import data


@dataclass(frozen=True)
class Soul:
    text: str
    sha256: str

    @classmethod
    def of(cls, raw: bytes) -> Soul:
        return cls(raw.decode("utf-8"), hashlib.sha256(raw).hexdigest())

    @classmethod
    def load(cls, path: Path) -> Soul:
        return cls.of(path.read_bytes())

    @classmethod
    def packaged(cls) -> Soul:
        """The SOUL.md this release ships (the repository's, inside the package)."""
        return cls.of(data.read_bytes(data.SOUL))
