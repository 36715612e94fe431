"""Secret references: where a secret lives, never the secret itself.

Secrets come from an environment variable or a file named in the config, never from the YAML
body or the command line, so a config file can be shared and a `ps` listing leaks nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator


class SecretError(RuntimeError):
    """A secret that the config points at is missing or unreadable."""


class SecretRef(BaseModel):
    """`{env: NAME}` or `{file: PATH}`; exactly one of the two."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of `env` or `file`")
        return self

    def describe(self) -> str:
        """Where the secret comes from, safe to print."""
        return f"env:{self.env}" if self.env else f"file:{self.file}"

    def get(self) -> str:
        """Read the secret now (not at load time, so rotation needs no restart of config)."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise SecretError(f"environment variable {self.env} is not set")
            return value
        assert self.file is not None
        path = self.file.expanduser()
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretError(f"cannot read secret file {path}: {exc.strerror}") from None
        if not value:
            raise SecretError(f"secret file {path} is empty")
        return value

    def available(self) -> bool:
        try:
            self.get()
        except SecretError:
            return False
        return True


def write_private(path: Path, data: str | bytes) -> None:
    """Write a file that only its owner can read (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def tighten_tree(root: Path) -> list[Path]:
    """Make a state directory private again: directories 0700, files 0600.

    For trees that other programs write into (Synapse's database holds the bot's access
    token) and for state directories an older release left too open. Returns what it
    changed, so a caller can say so. Symlinks are left alone.
    """
    changed: list[Path] = []
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode & 0o777
        # A file keeps its owner-execute bit; group and others lose everything.
        wanted = 0o700 if path.is_dir() else 0o600 | (mode & 0o100)
        if mode != wanted:
            os.chmod(path, wanted)
            changed.append(path)
    return changed
