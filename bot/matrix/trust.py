"""Which devices get our room keys and whose messages we believe: the one trust path.

nio refuses to encrypt for a room while any member device is neither verified, ignored nor
blacklisted. We decide every device before sending: trusted operator devices are verified,
everyone else is blacklisted, so room keys only ever reach devices the policy trusts and
`room_send` can run with `ignore_unverified_devices=False` as a second safety net.

A decision is made once, in three steps, and its reason travels with it to the log:

1. identity (operators, identity policies): cross-signing and pins, in
   `bot.crosssign.verify.decide`, asked through `IdentityTrust` (`OperatorTrust`);
2. policy (`decide_device`): not an operator; `tofu`; or the identity decision as it is,
   reason included ("signed by the user's pinned cross-signing identity", "not cross-signed;
   unsigned devices allowed by configuration", ...);
3. nio (`apply_trust`): its trust store made to say exactly that, reporting what changed.

`trust_pass` runs the three over every device of every room member; the bot's Matrix shell
calls it before each send and after each sync, and the tests call the same functions.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.crosssign.keys import fingerprint
from bot.crosssign.verify import TrustDecision
from bot.matrix.state import BotState
from fleetcore.config import TrustPolicy
from fleetcore.log import fields

log = logging.getLogger(__name__)

__all__ = [
    "IdentityTrust",
    "NewDevice",
    "TrustChanges",
    "TrustPass",
    "apply_trust",
    "decide_device",
    "fingerprint",
    "sender_device",
    "trust_pass",
]


class Device(Protocol):
    user_id: str
    id: str
    ed25519: str


class IdentityTrust(Protocol):
    """Identity-level trust (cross-signing) of operators' devices."""

    def decide_device(self, user_id: str, device: Any) -> TrustDecision | None:
        """None when the device is not in the last keys query (refresh first)."""
        ...

    async def refresh(self, user_ids: Iterable[str]) -> object: ...

    def take_announcements(self) -> list[str]: ...


# -- 2. policy ------------------------------------------------------------------------------


def decide_device(
    is_operator: bool, policy: TrustPolicy, identity: TrustDecision | None
) -> TrustDecision:
    """The policy's decision for one device, with the reason that really decided it.

    `tofu`: an operator's device is trusted on first sight. Identity policies
    (`identity-tofu`, `verified-only`) take the cross-signing decision as it is, which
    already accounts for pins and `allow_unsigned_devices`; without one yet (no keys query
    has seen the device) the device is not trusted.
    """
    if not is_operator:
        return TrustDecision(False, "not an operator")
    if policy is TrustPolicy.TOFU:
        return TrustDecision(True, "operator device, trusted on first use (tofu policy)")
    if identity is None:
        return TrustDecision(False, "no cross-signing data for this device yet")
    return identity


# -- 3. nio's trust store -------------------------------------------------------------------


class _TrustState(Protocol):
    def is_device_verified(self, device: Any) -> bool: ...
    def is_device_blacklisted(self, device: Any) -> bool: ...
    def is_device_ignored(self, device: Any) -> bool: ...


class _TrustClient(Protocol):
    """The part of nio's AsyncClient `apply_trust` needs (kept narrow for fakes)."""

    @property
    def olm(self) -> _TrustState | None: ...
    def verify_device(self, device: Any) -> bool: ...
    def unverify_device(self, device: Any) -> bool: ...
    def blacklist_device(self, device: Any) -> bool: ...
    def unblacklist_device(self, device: Any) -> bool: ...
    def unignore_device(self, device: Any) -> bool: ...


@dataclass
class TrustChanges:
    trusted: list[tuple[str, str]] = field(default_factory=list)
    distrusted: list[tuple[str, str]] = field(default_factory=list)


# nio's DefaultStore keeps trust in known_hosts-like lists that append a duplicate on every
# add and drop one copy per remove: blacklisting twice and unblacklisting once leaves the
# device blacklisted. So only ever add a state the device lacks, and clear states in a loop.
_MAX_COPIES = 64


def _clear(check: Any, clear: Any, device: Any) -> None:
    for _ in range(_MAX_COPIES):
        if not check(device):
            return
        clear(device)
    raise RuntimeError(f"nio trust store will not clear a state of device {device.id}")


def apply_trust(
    client: _TrustClient, decisions: Iterable[tuple[Device, TrustDecision]]
) -> TrustChanges:
    """Make nio's trust store say exactly what the decisions say.

    Trusted -> verified (and nothing else); untrusted -> blacklisted (and nothing else), never
    "ignored": nio shares room keys with ignored devices. nio's state-change methods
    invalidate the outbound Megolm session of every room the device's user is in, so a device
    that loses trust cannot read anything sent after this call. Send with
    `ignore_unverified_devices=False` (nio's default) so a device nobody decided yet makes nio
    raise OlmUnverifiedDeviceError instead of silently getting the key.
    """
    olm = client.olm
    if olm is None:
        raise RuntimeError("nio client has no loaded crypto store")
    changes = TrustChanges()
    for device, decision in decisions:
        key = (device.user_id, device.id)
        if decision.trusted:
            _clear(olm.is_device_blacklisted, client.unblacklist_device, device)
            _clear(olm.is_device_ignored, client.unignore_device, device)
            if not olm.is_device_verified(device):
                client.verify_device(device)
                changes.trusted.append(key)
        else:
            _clear(olm.is_device_verified, client.unverify_device, device)
            _clear(olm.is_device_ignored, client.unignore_device, device)
            if not olm.is_device_blacklisted(device):
                client.blacklist_device(device)
                changes.distrusted.append(key)
    return changes


# -- the pass over every device -------------------------------------------------------------


@dataclass(frozen=True)
class NewDevice:
    """An operator device trusted for the first time, by a user we already knew."""

    user_id: str
    device_id: str
    fingerprint: str
    reason: str


@dataclass
class TrustPass:
    changes: TrustChanges
    new_devices: list[NewDevice] = field(default_factory=list)
    # An operator device the last keys query did not know: refresh identities, then decide.
    identity_stale: bool = False


def trust_pass(
    client: Any,
    state: BotState,
    operators: Collection[str],
    policy: TrustPolicy,
    identity: IdentityTrust | None,
    skip: Collection[tuple[str, str]] = (),
) -> TrustPass:
    """Decide and apply every known device of every room member; log each change and why.

    `client` is nio's AsyncClient with a loaded crypto store. Our own other devices are
    dead stores of earlier installs: they get no keys. `skip` names (user, device) pairs
    the caller is handling itself for the moment.
    """
    olm = client.olm
    if olm is None:
        raise RuntimeError("nio client has no loaded crypto store")
    for device in client.device_store.active_user_devices(client.user_id):
        if device.id != client.device_id and not olm.is_device_blacklisted(device):
            client.blacklist_device(device)
    users: set[str] = set()
    for room in client.rooms.values():
        users.update(room.users)
    users.discard(client.user_id)

    decisions: list[tuple[Device, TrustDecision]] = []
    known_before: dict[str, bool] = {}
    stale = False
    for user_id in sorted(users):
        # Devices seen on the first pass for a user are first sight, not news.
        known_before[user_id] = state.has_devices_of(user_id)
        is_operator = user_id in operators
        for device in client.device_store.active_user_devices(user_id):
            if (user_id, device.id) in skip:
                continue
            crossed = None
            if is_operator and identity is not None:
                crossed = identity.decide_device(user_id, device)
                stale = stale or crossed is None
            decisions.append((device, decide_device(is_operator, policy, crossed)))

    changes = apply_trust(client, decisions)
    done = TrustPass(changes, identity_stale=stale)
    decided = {(device.user_id, device.id): (device, d) for device, d in decisions}
    for key in changes.trusted:
        device, decision = decided[key]
        log.info(
            "device_trusted",
            extra=fields(user=device.user_id, device=device.id, reason=decision.reason),
        )
        first_time = state.remember_device(device.user_id, device.id, device.ed25519)
        if first_time and known_before[device.user_id]:
            done.new_devices.append(
                NewDevice(device.user_id, device.id, fingerprint(device.ed25519), decision.reason)
            )
    for key in changes.distrusted:
        device, decision = decided[key]
        log.info(
            "device_distrusted",
            extra=fields(user=device.user_id, device=device.id, reason=decision.reason),
        )
    return done


def sender_device(client: Any, user_id: str, sender_key: str | None) -> tuple[str | None, bool]:
    """The device that sent a message (by its Curve25519 key), and whether we trust it."""
    if sender_key is None:
        return None, False
    olm = client.olm
    for device in client.device_store.active_user_devices(user_id):
        if device.curve25519 == sender_key:
            if olm is None:
                return device.id, False
            trusted = olm.is_device_verified(device) and not olm.is_device_blacklisted(device)
            return device.id, bool(trusted)
    return None, False
