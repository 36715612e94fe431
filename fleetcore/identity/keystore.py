"""Where identities live on disk: one 0700 directory per identity, each secret a 0600 file.

Files are created with their modes (never chmod-ed afterwards), are never overwritten, and
hold one line: the `nsec1...` or the `SU...` seed. The public halves are derived on load, so
they cannot drift from the secrets. Nothing here logs or prints a secret.

Layout of an agent directory (`fleet agent keygen NAME --out DIR`):
- `nostr.nsec`: the agent's Nostr secret key; irrevocable (see `nostr.IRREVOCABLE`);
- `nkey.seed`: the agent's NATS user seed (what `nats.connect(nkeys_seed=...)` reads).

The fleet's own Nostr key (it signs SOUL.md) is `STATE_DIR/identity/fleet.nsec`, made on
first use, with `fleet.npub` beside it so that processes that may not read the secret can
still know whose signature to trust.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetcore.identity.nkey import NKeyError, UserNKey
from fleetcore.identity.nostr import (
    IRREVOCABLE,
    Event,
    NostrError,
    NostrKey,
    npub_decode,
    profile_event,
)
from fleetcore.secrets import (
    SecretError,
    SecretExistsError,
    make_private_dir,
    read_private,
    write_new_private,
)

NOSTR_FILE = "nostr.nsec"
NKEY_FILE = "nkey.seed"
IDENTITY_DIR = "identity"
FLEET_NOSTR_FILE = "fleet.nsec"
FLEET_NPUB_FILE = "fleet.npub"

__all__ = [
    "IRREVOCABLE",
    "AgentIdentity",
    "KeyExistsError",
    "KeystoreError",
    "fleet_identity_dir",
    "fleet_key",
    "fleet_npub",
    "keygen",
    "load_agent",
    "load_nkey",
    "load_nostr",
]


class KeystoreError(SecretError):
    """A key file that is missing, malformed or too open."""


class KeyExistsError(KeystoreError, SecretExistsError):
    """Keys are already there: an identity is never replaced by accident."""


@dataclass(frozen=True)
class AgentIdentity:
    """An agent's public identity, as `fleet agent keygen` prints it (no secrets)."""

    name: str
    npub: str
    nkey: str
    profile_event: Event

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "npub": self.npub,
            "nkey": self.nkey,
            "profile_event": self.profile_event.to_dict(),
        }


def keygen(out_dir: Path, name: str, about: str | None = None) -> AgentIdentity:
    """Make an agent's Nostr key and NATS user NKey in `out_dir` (0700, files 0600).

    Refuses (`KeyExistsError`) if either key file exists, before writing anything. The Nostr
    key is irrevocable: the caller must say so to the operator.
    """
    for fname in (NOSTR_FILE, NKEY_FILE):
        if (out_dir / fname).exists() or (out_dir / fname).is_symlink():
            raise KeyExistsError(f"{out_dir / fname} already exists; refusing to replace a key")
    make_private_dir(out_dir)
    nostr = NostrKey.generate()
    nkey = UserNKey.generate()
    try:
        write_new_private(out_dir / NOSTR_FILE, nostr.nsec_secret() + "\n")
        write_new_private(out_dir / NKEY_FILE, nkey.seed_secret() + "\n")
    except SecretExistsError as exc:
        raise KeyExistsError(f"{exc}; refusing to replace a key") from None
    about = about if about is not None else f"{name}, an agent of a Hermes fleet"
    return AgentIdentity(name, nostr.npub, nkey.public, profile_event(nostr, name, about))


def load_nostr(path: Path) -> NostrKey:
    try:
        return NostrKey.from_nsec(read_private(path))
    except NostrError as exc:
        raise KeystoreError(f"{path}: {exc}") from None


def load_nkey(path: Path) -> UserNKey:
    try:
        return UserNKey.from_seed(read_private(path))
    except NKeyError as exc:
        raise KeystoreError(f"{path}: {exc}") from None


def load_agent(agent_dir: Path) -> tuple[NostrKey, UserNKey]:
    return load_nostr(agent_dir / NOSTR_FILE), load_nkey(agent_dir / NKEY_FILE)


def fleet_identity_dir(state_dir: Path) -> Path:
    return state_dir.expanduser() / IDENTITY_DIR


def fleet_key(state_dir: Path) -> tuple[NostrKey, bool]:
    """The fleet's own Nostr key, and whether it was just made (first use).

    A new key is irrevocable, like every Nostr key: the caller says so when it reports one.
    """
    folder = fleet_identity_dir(state_dir)
    path = folder / FLEET_NOSTR_FILE
    if path.exists():
        return load_nostr(path), False
    make_private_dir(folder)
    key = NostrKey.generate()
    try:
        write_new_private(path, key.nsec_secret() + "\n")
    except SecretExistsError:
        # Another process made it first; theirs is the fleet's key.
        return load_nostr(path), False
    npub_path = folder / FLEET_NPUB_FILE
    npub_path.unlink(missing_ok=True)
    write_new_private(npub_path, key.npub + "\n")
    return key, True


def fleet_npub(state_dir: Path) -> str | None:
    """The fleet's public key if it has one: from `fleet.npub`, else from the secret."""
    folder = fleet_identity_dir(state_dir)
    try:
        text = (folder / FLEET_NPUB_FILE).read_text(encoding="utf-8").strip()
        npub_decode(text)
        return text
    except (OSError, NostrError):
        pass
    if (folder / FLEET_NOSTR_FILE).exists():
        return load_nostr(folder / FLEET_NOSTR_FILE).npub
    return None
