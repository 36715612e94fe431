"""The bot's cross-signing identity: three Ed25519 keys, kept 0600 next to its store.

Only the 32-byte seeds are stored; the public halves are derived. The file lives in the bot's
state directory, not inside nio's store, so a wiped device store (a new device id) is signed
again by the same identity and operators do not have to re-verify the bot.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from bot.crosssign.signing import (
    public_b64,
    sign_json,
    unpadded_b64decode,
    unpadded_b64encode,
)
from fleetcore.secrets import write_private

KEYS_FILE = "cross_signing.json"
_FORMAT_VERSION = 1


class KeyFileError(RuntimeError):
    """The stored key file is unreadable, malformed, or belongs to another user."""


def fingerprint(public_key: str) -> str:
    """A public key in groups of four, the way Element shows it, to compare by eye."""
    return " ".join(public_key[i : i + 4] for i in range(0, len(public_key), 4))


@dataclass(frozen=True)
class CrossSigningKeys:
    user_id: str
    master: SigningKey
    self_signing: SigningKey
    user_signing: SigningKey

    # -- creation and storage ----------------------------------------------------------

    @classmethod
    def generate(cls, user_id: str) -> CrossSigningKeys:
        return cls(user_id, SigningKey.generate(), SigningKey.generate(), SigningKey.generate())

    @staticmethod
    def path_in(store_dir: Path) -> Path:
        return store_dir / KEYS_FILE

    def save(self, store_dir: Path) -> Path:
        path = self.path_in(store_dir)
        data = {
            "version": _FORMAT_VERSION,
            "user_id": self.user_id,
            "master": unpadded_b64encode(bytes(self.master)),
            "self_signing": unpadded_b64encode(bytes(self.self_signing)),
            "user_signing": unpadded_b64encode(bytes(self.user_signing)),
        }
        write_private(path, json.dumps(data, indent=1))
        return path

    @classmethod
    def load(cls, store_dir: Path, user_id: str) -> CrossSigningKeys | None:
        """The stored identity, or None when there is none yet."""
        path = cls.path_in(store_dir)
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise KeyFileError(f"cannot read {path}: {exc.strerror}") from None
        # Tighten permissions if someone copied the file around loosely.
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)
        try:
            data = json.loads(raw)
            if data.get("version") != _FORMAT_VERSION:
                raise KeyFileError(f"{path}: unknown format version {data.get('version')!r}")
            if data.get("user_id") != user_id:
                raise KeyFileError(
                    f"{path} holds the identity of {data.get('user_id')!r}, not {user_id!r}"
                )
            return cls(
                user_id,
                SigningKey(unpadded_b64decode(data["master"])),
                SigningKey(unpadded_b64decode(data["self_signing"])),
                SigningKey(unpadded_b64decode(data["user_signing"])),
            )
        except KeyFileError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError):
            # No detail: the exception text could quote key material.
            raise KeyFileError(f"{path} is not a valid cross-signing key file") from None

    @classmethod
    def load_or_generate(cls, store_dir: Path, user_id: str) -> tuple[CrossSigningKeys, bool]:
        """(keys, created): a new identity is saved before anything is uploaded."""
        keys = cls.load(store_dir, user_id)
        if keys is not None:
            return keys, False
        keys = cls.generate(user_id)
        keys.save(store_dir)
        return keys, True

    # -- public halves -----------------------------------------------------------------

    @property
    def master_public(self) -> str:
        return public_b64(self.master)

    @property
    def self_signing_public(self) -> str:
        return public_b64(self.self_signing)

    @property
    def user_signing_public(self) -> str:
        return public_b64(self.user_signing)

    @property
    def master_key_id(self) -> str:
        return f"ed25519:{self.master_public}"

    @property
    def self_signing_key_id(self) -> str:
        return f"ed25519:{self.self_signing_public}"

    @property
    def user_signing_key_id(self) -> str:
        return f"ed25519:{self.user_signing_public}"

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.master_public)

    def _key_object(self, usage: str, public: str) -> dict[str, Any]:
        return {"user_id": self.user_id, "usage": [usage], "keys": {f"ed25519:{public}": public}}

    def master_key_object(self) -> dict[str, Any]:
        return self._key_object("master", self.master_public)

    def self_signing_key_object(self) -> dict[str, Any]:
        obj = self._key_object("self_signing", self.self_signing_public)
        return sign_json(obj, self.user_id, self.master_key_id, self.master)

    def user_signing_key_object(self) -> dict[str, Any]:
        obj = self._key_object("user_signing", self.user_signing_public)
        return sign_json(obj, self.user_id, self.master_key_id, self.master)

    def upload_body(self) -> dict[str, Any]:
        """The body of `POST /keys/device_signing/upload` (without `auth`)."""
        return {
            "master_key": self.master_key_object(),
            "self_signing_key": self.self_signing_key_object(),
            "user_signing_key": self.user_signing_key_object(),
        }

    def sign_device(self, device_keys: dict[str, Any]) -> dict[str, Any]:
        """Our own device's key object signed with the self-signing key (`unsigned` dropped,
        since `/keys/signatures/upload` compares the object with the stored one)."""
        body = {k: v for k, v in device_keys.items() if k != "unsigned"}
        return sign_json(body, self.user_id, self.self_signing_key_id, self.self_signing)

    def sign_user(self, master_key: dict[str, Any]) -> dict[str, Any]:
        """Another user's master key signed with our user-signing key ("we verified them")."""
        body = {k: v for k, v in master_key.items() if k != "unsigned"}
        return sign_json(body, self.user_id, self.user_signing_key_id, self.user_signing)

    def __repr__(self) -> str:  # never print private keys, even in a traceback
        return f"CrossSigningKeys(user_id={self.user_id!r}, master={self.master_public!r})"
