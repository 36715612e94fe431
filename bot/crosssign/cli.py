"""`fleet bot identity`: the bot's master key fingerprint and whether this device is signed.

Read-only: it never creates or uploads anything, so it is safe to run next to a live bot.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from bot.crosssign.api import query_keys
from bot.crosssign.keys import CrossSigningKeys, fingerprint


@dataclass(frozen=True)
class IdentityStatus:
    user_id: str
    device_id: str
    store_dir: Path
    local_master: str | None
    server_master: str | None
    device_uploaded: bool
    device_signed: bool

    def render(self) -> str:
        lines = [f"user:            {self.user_id}", f"device:          {self.device_id}"]
        if self.local_master is not None:
            lines.append(f"master key:      {fingerprint(self.local_master)}")
        else:
            lines.append(f"master key:      (no cross-signing keys in {self.store_dir})")
        if self.server_master is None:
            lines.append("on homeserver:   no cross-signing identity uploaded")
        elif self.server_master == self.local_master:
            lines.append("on homeserver:   same master key")
        else:
            lines.append(f"on homeserver:   DIFFERENT master key {fingerprint(self.server_master)}")
        if not self.device_uploaded:
            signed = "no (device has no uploaded keys)"
        elif self.device_signed:
            signed = "yes (by the self-signing key, which the master key signs)"
        else:
            signed = "no"
        lines.append(f"device signed:   {signed}")
        lines.append("Compare the master key with Element: the bot's profile, Verify.")
        return "\n".join(lines)


async def identity_status(
    hs_url: str, access_token: str, user_id: str, device_id: str, store_dir: Path
) -> IdentityStatus:
    keys = CrossSigningKeys.load(store_dir, user_id)
    query = await query_keys(hs_url, access_token, [user_id])
    return IdentityStatus(
        user_id=user_id,
        device_id=device_id,
        store_dir=store_dir,
        local_master=keys.master_public if keys is not None else None,
        server_master=query.master_public(user_id),
        device_uploaded=query.device(user_id, device_id) is not None,
        device_signed=query.is_cross_signed(user_id, device_id),
    )


async def identity_report(
    hs_url: str, access_token: str, user_id: str, device_id: str, store_dir: Path
) -> str:
    status = await identity_status(hs_url, access_token, user_id, device_id, store_dir)
    return status.render()


def identity_report_sync(
    hs_url: str, access_token: str, user_id: str, device_id: str, store_dir: Path
) -> str:
    return asyncio.run(identity_report(hs_url, access_token, user_id, device_id, store_dir))


def print_identity(
    hs_url: str, access_token: str, user_id: str, device_id: str, store_dir: Path
) -> int:
    """For `fleet bot identity`: print the report; exit code 0 when the device is signed
    by the identity kept in `store_dir`, 1 otherwise."""
    status = asyncio.run(identity_status(hs_url, access_token, user_id, device_id, store_dir))
    print(status.render())
    ok = status.device_signed and status.server_master == status.local_master
    return 0 if ok else 1
