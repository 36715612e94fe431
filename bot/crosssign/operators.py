"""The bridge between the bot shell and identity-TOFU decisions.

The shell's trust hook is synchronous (`(user_id, OlmDevice) -> bool | None`) and runs inside
its send path, while cross-signing data comes from an async `/keys/query`. This keeps the
latest query per user: `refresh()` when nio refreshes device lists, then ask per device.
Announcements of changed identities are queued for the shell to post in the operators' room.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from bot.crosssign.api import KeysQuery, query_keys
from bot.crosssign.verify import IdentityPins, TrustDecision, decide


class _Device(Protocol):
    user_id: str
    id: str
    ed25519: str


class OperatorTrust:
    def __init__(
        self,
        hs_url: str,
        access_token: str,
        pins: IdentityPins,
        *,
        allow_unsigned_devices: bool = False,
        pin_on_first_sight: bool = True,
    ) -> None:
        self.hs_url = hs_url
        self.access_token = access_token
        self.pins = pins
        self.allow_unsigned_devices = allow_unsigned_devices
        self.pin_on_first_sight = pin_on_first_sight
        self._query = KeysQuery()
        self._announcements: list[str] = []

    async def refresh(self, user_ids: Iterable[str]) -> KeysQuery:
        """Fetch the current device and cross-signing keys of `user_ids`."""
        users = sorted(set(user_ids))
        if not users:
            return self._query
        fresh = await query_keys(self.hs_url, self.access_token, users)
        merged: dict[str, dict[str, Any]] = {}
        for name in ("device_keys", "master_keys", "self_signing_keys", "user_signing_keys"):
            old: dict[str, Any] = dict(getattr(self._query, name))
            for user in users:  # a refreshed user's absent entries mean "gone", not "unchanged"
                old.pop(user, None)
            old.update(getattr(fresh, name))
            merged[name] = old
        self._query = KeysQuery(**merged, failures=fresh.failures)
        return self._query

    def decide_device(self, user_id: str, device: _Device) -> TrustDecision | None:
        """None when the device is not in the last query (refresh first)."""
        raw = self._query.device(user_id, device.id)
        if raw is None:
            return None
        own_key = raw.get("keys", {}).get(f"ed25519:{device.id}")
        if own_key != device.ed25519:
            return TrustDecision(False, "device key differs from the one nio holds")
        decision = decide(
            user_id,
            self._query.master_keys.get(user_id),
            self._query.self_signing_keys.get(user_id),
            raw,
            self.pins,
            allow_unsigned_devices=self.allow_unsigned_devices,
            pin_on_first_sight=self.pin_on_first_sight,
        )
        if decision.announce:
            self._announcements.append(decision.describe_change(user_id))
        return decision

    def __call__(self, user_id: str, device: _Device) -> bool | None:
        """The shell's `IdentityTrust` hook."""
        decision = self.decide_device(user_id, device)
        return None if decision is None else decision.trusted

    def take_announcements(self) -> list[str]:
        """Changed-identity notices not yet posted (each change appears once)."""
        out, self._announcements = self._announcements, []
        return out

    def confirm(self, user_id: str) -> str:
        """`!trust @user:server`: accept the changed identity announced for that user."""
        from bot.crosssign.keys import fingerprint

        try:
            new = self.pins.confirm(user_id)
        except LookupError:
            return f"No changed identity is waiting for confirmation for {user_id}."
        if new is None:
            return f"{user_id} has no cross-signing identity any more; the pin was removed."
        return f"Trusting the new identity of {user_id} (master key {fingerprint(new)})."
