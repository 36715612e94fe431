"""Identity-level trust: which devices of an operator the bot believes and shares keys with.

The policy is identity TOFU. On first sight the bot pins a user's cross-signing master key;
from then on it trusts exactly the devices signed by that identity's self-signing key (which
the master key must sign). A changed master key is never trusted silently: it is reported and
stays untrusted until an operator confirms it (`!trust @user:server`). Unsigned devices are
untrusted unless `allow_unsigned_devices` is set (for clients without cross-signing).

Everything here is pure except the pin file. What a decision does to nio's trust store, and
the policy around it, is `bot.matrix.trust`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.crosssign.keys import fingerprint
from bot.crosssign.signing import verify_signature
from fleetcore.log import fields
from fleetcore.secrets import write_private

log = logging.getLogger(__name__)

__all__ = [
    "IdentityPins",
    "TrustDecision",
    "cross_signing_key",
    "decide",
    "device_is_cross_signed",
    "device_self_signed",
    "verify_signed_json",
]


def verify_signed_json(obj: dict[str, Any], user_id: str, key_id: str, public_key: str) -> bool:
    """True when `obj` carries a valid canonical-JSON signature by that key."""
    return verify_signature(obj, user_id, key_id, public_key)


def cross_signing_key(obj: Mapping[str, Any] | None, user_id: str, usage: str) -> str | None:
    """The public key of a well-formed cross-signing key object, else None.

    Well-formed: belongs to `user_id`, has `usage` among its usages, and exactly one ed25519
    key whose id names the key itself.
    """
    if not isinstance(obj, Mapping) or obj.get("user_id") != user_id:
        return None
    usages = obj.get("usage")
    if not isinstance(usages, list) or usage not in usages:
        return None
    keys = obj.get("keys")
    if not isinstance(keys, Mapping) or len(keys) != 1:
        return None
    ((key_id, public),) = keys.items()
    if not isinstance(public, str) or key_id != f"ed25519:{public}":
        return None
    return public


def device_ed25519(device_keys: Mapping[str, Any], user_id: str | None = None) -> str | None:
    """A device's own Ed25519 key, if the object is a device-key object (of `user_id`)."""
    if not isinstance(device_keys, Mapping):
        return None
    device_id = device_keys.get("device_id")
    if user_id is not None and device_keys.get("user_id") != user_id:
        return None
    keys = device_keys.get("keys")
    if not isinstance(device_id, str) or not isinstance(keys, Mapping):
        return None
    key = keys.get(f"ed25519:{device_id}")
    return key if isinstance(key, str) else None


def device_self_signed(device_keys: Mapping[str, Any]) -> bool:
    """The device object is signed by its own device key (every honest client does this)."""
    user_id = device_keys.get("user_id") if isinstance(device_keys, Mapping) else None
    key = device_ed25519(device_keys)
    if not isinstance(user_id, str) or key is None:
        return False
    return verify_signature(dict(device_keys), user_id, f"ed25519:{device_keys['device_id']}", key)


def device_is_cross_signed(
    device_keys: Mapping[str, Any] | None,
    self_signing_key: Mapping[str, Any] | None,
    master_key: Mapping[str, Any] | None,
) -> bool:
    """The chain master -> self-signing -> device holds, all for the device's own user."""
    if not isinstance(device_keys, Mapping):
        return False
    user_id = device_keys.get("user_id")
    if not isinstance(user_id, str):
        return False
    master = cross_signing_key(master_key, user_id, "master")
    ssk = cross_signing_key(self_signing_key, user_id, "self_signing")
    if master is None or ssk is None or self_signing_key is None:
        return False
    if not verify_signature(dict(self_signing_key), user_id, f"ed25519:{master}", master):
        return False
    if not device_self_signed(device_keys):
        return False
    return verify_signature(dict(device_keys), user_id, f"ed25519:{ssk}", ssk)


# -- pins ---------------------------------------------------------------------------------


class IdentityPins:
    """user_id -> pinned master key, plus the unconfirmed new key each user last showed.

    A JSON file (0600) rewritten atomically on every change. Keeping the pending key here is
    what lets `!trust @user:server` confirm "the key we announced" without the operator
    typing 43 characters of base64.
    """

    def __init__(self, path: Path | None, pins: dict[str, str] | None = None) -> None:
        self.path = path
        self._pins: dict[str, str] = dict(pins or {})
        self._pending: dict[str, str | None] = {}

    @classmethod
    def load(cls, path: Path) -> IdentityPins:
        pins = cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return pins
        except json.JSONDecodeError:
            raise ValueError(f"{path} is not a valid identity pin file") from None
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)
        pins._pins = {str(k): str(v) for k, v in data.get("pins", {}).items()}
        pins._pending = {
            str(k): (None if v is None else str(v)) for k, v in data.get("pending", {}).items()
        }
        return pins

    def _save(self) -> None:
        if self.path is None:
            return
        data = {"version": 1, "pins": self._pins, "pending": self._pending}
        write_private(self.path, json.dumps(data, indent=1, sort_keys=True))

    def get(self, user_id: str) -> str | None:
        return self._pins.get(user_id)

    def pending(self, user_id: str) -> str | None:
        """The changed master key waiting for `!trust`, if any."""
        return self._pending.get(user_id)

    def has_pending(self, user_id: str) -> bool:
        return user_id in self._pending

    def pinned_users(self) -> list[str]:
        return sorted(self._pins)

    def pin(self, user_id: str, master_key: str) -> None:
        """First sight. Refuses to overwrite a different pin: that is what `confirm` is for."""
        current = self._pins.get(user_id)
        if current is not None and current != master_key:
            raise ValueError(f"{user_id} already has a different pinned identity")
        if current is None:
            self._pins[user_id] = master_key
            self._save()

    def note_change(self, user_id: str, new_master: str | None) -> bool:
        """Record an unconfirmed new identity (None: the identity vanished).

        True only the first time this exact change is seen, so it is announced once.
        """
        if user_id in self._pending and self._pending[user_id] == new_master:
            return False
        self._pending[user_id] = new_master
        self._save()
        return True

    def confirm(self, user_id: str, new_master: str | None = None) -> str | None:
        """`!trust @user:server`: accept the new identity (the pending one by default).

        Returns the master key now pinned (None when the user has no identity any more), or
        raises LookupError when there is nothing to confirm.
        """
        if new_master is None:
            if user_id not in self._pending:
                raise LookupError(f"no changed identity is waiting for confirmation for {user_id}")
            new_master = self._pending[user_id]
        self._pending.pop(user_id, None)
        if new_master is None:
            self._pins.pop(user_id, None)
        else:
            self._pins[user_id] = new_master
        self._save()
        return new_master

    def forget(self, user_id: str) -> None:
        self._pins.pop(user_id, None)
        self._pending.pop(user_id, None)
        self._save()


# -- decisions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustDecision:
    trusted: bool
    reason: str
    master_changed: bool = False
    # First sight: the master key was pinned by this very decision.
    pinned_now: bool = False
    # A master-key change seen for the first time: announce it (once) in the operators' room.
    announce: bool = False
    # The master key the server shows now, for announcements (public; safe to print).
    master_key: str | None = None
    pinned_key: str | None = None

    def describe_change(self, user_id: str) -> str:
        old = fingerprint(self.pinned_key) if self.pinned_key else "none"
        new = fingerprint(self.master_key) if self.master_key else "none"
        return (
            f"The cross-signing identity of {user_id} changed (was {old}, now {new}). "
            f"Their devices are not trusted until an operator confirms with `!trust {user_id}`."
        )


def decide(
    user_id: str,
    master_key: Mapping[str, Any] | None,
    self_signing_key: Mapping[str, Any] | None,
    device_keys: Mapping[str, Any] | None,
    pins: IdentityPins,
    allow_unsigned_devices: bool = False,
    pin_on_first_sight: bool = True,
) -> TrustDecision:
    """Trust decision for one device of `user_id` (key objects as `/keys/query` returns them).

    `pin_on_first_sight=False` is the `verified-only` policy: only identities pinned ahead of
    time (from the config) count. A changed identity makes every device of the user untrusted,
    even with `allow_unsigned_devices`, because a reset identity is exactly what an attacker
    holding the operator's password would produce.
    """
    if not isinstance(device_keys, Mapping) or device_keys.get("user_id") != user_id:
        return TrustDecision(False, "no device keys for this user")
    if not device_self_signed(device_keys):
        return TrustDecision(False, "device keys are not signed by the device itself")

    master = cross_signing_key(master_key, user_id, "master")
    pinned = pins.get(user_id)
    pinned_now = False

    if master is None:
        if pinned is not None:
            announce = pins.note_change(user_id, None)
            return TrustDecision(
                False,
                "the pinned cross-signing identity is gone; confirm with !trust",
                master_changed=True,
                announce=announce,
                pinned_key=pinned,
            )
        if allow_unsigned_devices:
            return TrustDecision(True, "no cross-signing identity; unsigned devices allowed")
        return TrustDecision(False, "user has no cross-signing identity")

    if pinned is None:
        if not pin_on_first_sight:
            return TrustDecision(
                False, "identity not pinned in the configuration", master_key=master
            )
        pins.pin(user_id, master)
        pinned, pinned_now = master, True
        log.info("identity_pinned", extra=fields(user=user_id, master=fingerprint(master)))

    if master != pinned:
        announce = pins.note_change(user_id, master)
        if announce:
            log.warning(
                "identity_changed",
                extra=fields(user=user_id, pinned=fingerprint(pinned), seen=fingerprint(master)),
            )
        return TrustDecision(
            False,
            "cross-signing identity changed; not trusted until confirmed with !trust",
            master_changed=True,
            announce=announce,
            master_key=master,
            pinned_key=pinned,
        )
    if pins.has_pending(user_id):
        # The server shows the pinned key again (the change was reverted): nothing to confirm.
        pins.confirm(user_id, pinned)

    if device_is_cross_signed(device_keys, self_signing_key, master_key):
        return TrustDecision(
            True,
            "signed by the user's pinned cross-signing identity",
            pinned_now=pinned_now,
            master_key=master,
            pinned_key=pinned,
        )
    if allow_unsigned_devices:
        return TrustDecision(
            True,
            "not cross-signed; unsigned devices allowed by configuration",
            pinned_now=pinned_now,
            master_key=master,
            pinned_key=pinned,
        )
    return TrustDecision(
        False,
        "device is not signed by the user's cross-signing identity",
        pinned_now=pinned_now,
        master_key=master,
        pinned_key=pinned,
    )
