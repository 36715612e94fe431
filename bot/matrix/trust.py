"""Which devices get our room keys and whose messages we believe.

nio refuses to encrypt for a room while any member device is neither verified, ignored nor
blacklisted. We decide every device before sending: trusted operator devices are verified,
everyone else is blacklisted, so room keys only ever reach devices the policy trusts and
`room_send` can run with `ignore_unverified_devices=False` as a second safety net.

The decision itself is a pure function; applying it to nio's store is the thin part.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DeviceVerdict(StrEnum):
    TRUST = "trust"
    DISTRUST = "distrust"


@dataclass(frozen=True)
class DeviceFacts:
    user_id: str
    device_id: str
    ed25519: str
    is_operator: bool
    # Cross-signing outcome for this device (the identity policy's verdict, which already
    # accounts for `allow_unsigned_devices`); None when not known yet.
    cross_signed_trusted: bool | None = None


@dataclass(frozen=True)
class DeviceDecision:
    verdict: DeviceVerdict
    reason: str


def decide_device(facts: DeviceFacts, policy: str) -> DeviceDecision:
    """Per-device decision. `tofu`: an operator's device is trusted on first sight.

    Identity policies (`identity-tofu`, `verified-only`) defer to the cross-signing result;
    without one (no cross-signing data yet) the device is not trusted.
    """
    if not facts.is_operator:
        return DeviceDecision(DeviceVerdict.DISTRUST, "not an operator")
    if policy == "tofu":
        return DeviceDecision(DeviceVerdict.TRUST, "operator device, trusted on first use")
    if facts.cross_signed_trusted:
        return DeviceDecision(DeviceVerdict.TRUST, "signed by the operator's pinned identity")
    return DeviceDecision(DeviceVerdict.DISTRUST, "not signed by a trusted operator identity")


def fingerprint(ed25519: str) -> str:
    """Element shows device keys in groups of four; so do we, to compare by eye."""
    return " ".join(ed25519[i : i + 4] for i in range(0, len(ed25519), 4))
