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


class SecretExistsError(FileExistsError):
    """A secret file is already there; secrets are never silently overwritten."""


# O_NOFOLLOW: a symlink planted where a secret goes must not redirect it somewhere readable.
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def make_private_dir(path: Path) -> Path:
    """Create a directory (and missing parents) that only its owner can enter: 0700.

    Each directory is created with that mode (a umask can only take bits away, never add
    them), so there is no moment when it is open. An existing directory that group or
    others can enter is refused rather than changed: it may already have leaked.
    """
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for each in reversed(missing):
        try:
            os.mkdir(each, 0o700)
        except FileExistsError:
            pass
    if path.is_symlink() or not path.is_dir():
        raise SecretError(f"{path} is not a directory")
    st = path.stat()
    if st.st_uid != os.getuid():
        raise SecretError(f"{path} belongs to another user (uid {st.st_uid})")
    mode = st.st_mode & 0o777
    if mode & 0o077:
        raise SecretError(
            f"{path} is open to others (mode {mode:04o}): use a new directory, "
            f"or `chmod 700` it after checking nothing leaked"
        )
    return path


def write_new_private(path: Path, data: str | bytes) -> None:
    """Write a secret that must not replace another: 0600 from creation, all or nothing.

    The bytes go to a fresh temporary file created 0600 (O_EXCL), which is then hard-linked
    to its name: the link fails if the name exists, so two writers cannot both win and a
    crash never leaves a half-written key under the real name. Raises `SecretExistsError`.
    """
    if path.exists() or path.is_symlink():
        raise SecretExistsError(f"{path} already exists")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, _NEW_FILE, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path, follow_symlinks=False)
        except FileExistsError:
            raise SecretExistsError(f"{path} already exists") from None
    finally:
        tmp.unlink(missing_ok=True)


def read_private(path: Path) -> str:
    """Read a secret file, refusing one that group or others can read (as ssh does)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise SecretError(f"cannot read secret file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fh.fileno()).st_mode & 0o777
        if mode & 0o077:
            raise SecretError(f"secret file {path} is readable by others (mode {mode:04o})")
        value = fh.read().decode("utf-8").strip()
    if not value:
        raise SecretError(f"secret file {path} is empty")
    return value


def write_private(path: Path, data: str | bytes) -> None:
    """Write a file that only its owner can read (0600), atomically, replacing any old one.

    The temporary file is created 0600 (O_EXCL, after removing a stale one), so its mode is
    never wider than that at any moment and needs no chmod afterwards.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, _NEW_FILE, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
        fh.flush()
        os.fsync(fh.fileno())
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
