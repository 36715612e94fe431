"""Identity-TOFU decisions, pins persistence, and applying decisions to nio's trust store."""

from __future__ import annotations

import json
import logging
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey
from nio import AsyncClient, AsyncClientConfig, MatrixRoom
from nio.crypto import OlmDevice
from nio.store import DefaultStore, SqliteStore

from bot.crosssign.keys import CrossSigningKeys, fingerprint
from bot.crosssign.signing import sign_json, unpadded_b64encode
from bot.crosssign.verify import (
    IdentityPins,
    TrustDecision,
    decide,
    device_is_cross_signed,
    verify_signed_json,
)
from bot.matrix.state import BotState
from bot.matrix.trust import NewDevice, apply_trust, decide_device, trust_pass
from fleetcore.config import TrustPolicy

OP = "@op:example.org"


def make_device(user_id: str, device_id: str) -> dict[str, Any]:
    """A device-key object as a client uploads it: signed by its own device key."""
    dk = SigningKey.generate()
    pub = unpadded_b64encode(bytes(dk.verify_key))
    obj = {
        "user_id": user_id,
        "device_id": device_id,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {f"curve25519:{device_id}": pub, f"ed25519:{device_id}": pub},
    }
    signed = sign_json(obj, user_id, f"ed25519:{device_id}", dk)
    signed["unsigned"] = {"device_display_name": "phone"}
    return signed


@dataclass
class Identity:
    keys: CrossSigningKeys

    @property
    def master(self) -> dict[str, Any]:
        return self.keys.master_key_object()

    @property
    def ssk(self) -> dict[str, Any]:
        return self.keys.self_signing_key_object()

    def signed(self, device: dict[str, Any]) -> dict[str, Any]:
        out = self.keys.sign_device(device)
        out["unsigned"] = device.get("unsigned", {})
        return out


@pytest.fixture
def ident() -> Identity:
    return Identity(CrossSigningKeys.generate(OP))


@pytest.fixture
def pins(tmp_path: Path) -> IdentityPins:
    return IdentityPins.load(tmp_path / "pins.json")


def test_cross_signed_chain(ident: Identity) -> None:
    dev = ident.signed(make_device(OP, "PHONE"))
    assert device_is_cross_signed(dev, ident.ssk, ident.master)
    ssk_pub = ident.keys.self_signing_public
    assert verify_signed_json(dev, OP, f"ed25519:{ssk_pub}", ssk_pub)
    # Unsigned device, or self-signing key not signed by this master: chain broken.
    assert not device_is_cross_signed(make_device(OP, "X"), ident.ssk, ident.master)
    stranger = CrossSigningKeys.generate(OP)
    assert not device_is_cross_signed(dev, ident.ssk, stranger.master_key_object())
    unsigned_ssk = {k: v for k, v in ident.ssk.items() if k != "signatures"}
    assert not device_is_cross_signed(dev, unsigned_ssk, ident.master)
    # Another user's identity cannot vouch for this device.
    other = CrossSigningKeys.generate("@mallory:example.org")
    forged = other.sign_device(make_device(OP, "F"))
    assert not device_is_cross_signed(
        forged, other.self_signing_key_object(), other.master_key_object()
    )
    # A tampered device object (keys swapped after signing) fails.
    tampered = json.loads(json.dumps(dev))
    tampered["algorithms"] = ["evil"]
    assert not device_is_cross_signed(tampered, ident.ssk, ident.master)


def test_first_sight_pins_and_trusts_signed_device(ident: Identity, pins: IdentityPins) -> None:
    dev = ident.signed(make_device(OP, "PHONE"))
    d = decide(OP, ident.master, ident.ssk, dev, pins)
    assert d.trusted and d.pinned_now and not d.master_changed
    assert pins.get(OP) == ident.keys.master_public
    again = decide(OP, ident.master, ident.ssk, dev, pins)
    assert again.trusted and not again.pinned_now


def test_unsigned_device_untrusted_unless_allowed(ident: Identity, pins: IdentityPins) -> None:
    dev = make_device(OP, "LAPTOP")
    d = decide(OP, ident.master, ident.ssk, dev, pins)
    assert not d.trusted and not d.master_changed
    assert decide(OP, ident.master, ident.ssk, dev, pins, allow_unsigned_devices=True).trusted


def test_user_without_cross_signing(pins: IdentityPins) -> None:
    dev = make_device(OP, "OLD")
    assert not decide(OP, None, None, dev, pins).trusted
    assert decide(OP, None, None, dev, pins, allow_unsigned_devices=True).trusted
    assert pins.get(OP) is None


def test_device_without_valid_self_signature_never_trusted(pins: IdentityPins) -> None:
    dev = make_device(OP, "D")
    dev["signatures"] = {}
    assert not decide(OP, None, None, dev, pins, allow_unsigned_devices=True).trusted
    assert not decide("@x:y", None, None, make_device(OP, "D"), pins, True).trusted


def test_changed_master_untrusted_until_confirmed(ident: Identity, pins: IdentityPins) -> None:
    decide(OP, ident.master, ident.ssk, ident.signed(make_device(OP, "PHONE")), pins)
    new = Identity(CrossSigningKeys.generate(OP))
    dev = new.signed(make_device(OP, "NEWPHONE"))

    first = decide(OP, new.master, new.ssk, dev, pins, allow_unsigned_devices=True)
    assert not first.trusted and first.master_changed and first.announce
    assert first.master_key == new.keys.master_public
    assert first.pinned_key == ident.keys.master_public
    assert "!trust @op:example.org" in first.describe_change(OP)
    second = decide(OP, new.master, new.ssk, dev, pins)
    assert not second.trusted and second.master_changed and not second.announce
    assert pins.get(OP) == ident.keys.master_public  # the old pin stays

    assert pins.confirm(OP) == new.keys.master_public
    after = decide(OP, new.master, new.ssk, dev, pins)
    assert after.trusted and not after.master_changed
    # A device of the old identity is no longer trusted.
    old_dev = ident.signed(make_device(OP, "PHONE"))
    assert not decide(OP, new.master, new.ssk, old_dev, pins).trusted
    with pytest.raises(LookupError):
        pins.confirm(OP)


def test_verified_only_does_not_pin(ident: Identity, tmp_path: Path) -> None:
    dev = ident.signed(make_device(OP, "PHONE"))
    empty = IdentityPins(None)
    assert not decide(OP, ident.master, ident.ssk, dev, empty, pin_on_first_sight=False).trusted
    assert empty.get(OP) is None
    fixed = IdentityPins(None, {OP: ident.keys.master_public})
    assert decide(OP, ident.master, ident.ssk, dev, fixed, pin_on_first_sight=False).trusted


def test_pins_persist_0600(ident: Identity, tmp_path: Path) -> None:
    path = tmp_path / "state" / "pins.json"
    pins = IdentityPins.load(path)
    decide(OP, ident.master, ident.ssk, make_device(OP, "A"), pins)
    other = CrossSigningKeys.generate(OP)
    decide(OP, other.master_key_object(), None, make_device(OP, "B"), pins)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    reloaded = IdentityPins.load(path)
    assert reloaded.get(OP) == ident.keys.master_public
    assert reloaded.pending(OP) == other.master_public
    # The change was announced before the restart; it is not announced again after it.
    d = decide(OP, other.master_key_object(), None, make_device(OP, "B"), reloaded)
    assert d.master_changed and not d.announce
    reloaded.confirm(OP)
    assert IdentityPins.load(path).get(OP) == other.master_public
    assert not IdentityPins.load(path).has_pending(OP)


def test_reverted_change_clears_pending(ident: Identity, pins: IdentityPins) -> None:
    dev = ident.signed(make_device(OP, "PHONE"))
    decide(OP, ident.master, ident.ssk, dev, pins)
    other = CrossSigningKeys.generate(OP)
    decide(OP, other.master_key_object(), None, dev, pins)
    assert pins.has_pending(OP)
    assert decide(OP, ident.master, ident.ssk, dev, pins).trusted
    assert not pins.has_pending(OP)


def offline_nio(tmp_path: Path, store: type) -> AsyncClient:
    """A nio client with a loaded crypto store and no server: trust state is all local."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    client = AsyncClient(
        "http://127.0.0.1:9",
        "@bot:example.org",
        store_path=str(tmp_path),
        config=AsyncClientConfig(store=store),
    )
    client.restore_login("@bot:example.org", "BOTDEVICE", "token")
    return client


def olm_device(user_id: str, device_id: str) -> OlmDevice:
    key = unpadded_b64encode(bytes(SigningKey.generate().verify_key))
    return OlmDevice(user_id, device_id, {"ed25519": key, "curve25519": key})


@pytest.mark.parametrize("store", [DefaultStore, SqliteStore])
async def test_apply_trust_on_real_nio_stores(tmp_path: Path, store: type) -> None:
    nio = offline_nio(tmp_path / store.__name__, store)
    try:
        a, b, c = olm_device(OP, "A"), olm_device(OP, "B"), olm_device(OP, "C")
        for dev in (a, b, c):
            nio.device_store.add(dev)
            if store is SqliteStore:
                nio.store.save_device_keys({OP: {dev.id: dev}})
        nio.ignore_device(c)  # nio would share room keys with an ignored device
        olm = nio.olm
        assert olm is not None
        yes, no = TrustDecision(True, "signed"), TrustDecision(False, "unsigned")

        changes = apply_trust(nio, [(a, yes), (b, no), (c, no)])
        assert changes.trusted == [(OP, "A")]
        assert changes.distrusted == [(OP, "B"), (OP, "C")]
        # Applying the same decisions again changes nothing...
        again = apply_trust(nio, [(a, yes), (b, no), (c, no)])
        assert again.trusted == [] and again.distrusted == []
        # ...and flipping them afterwards really flips them (no stale duplicate states).
        apply_trust(nio, [(a, no), (b, yes), (c, yes)])
        for dev, verified in ((a, False), (b, True), (c, True)):
            assert olm.is_device_verified(dev) is verified
            assert olm.is_device_blacklisted(dev) is (not verified)
            assert not olm.is_device_ignored(dev)
    finally:
        await nio.close()


# -- the policy and the pass the running bot makes (bot.matrix.trust) ----------------------

SIGNED = TrustDecision(True, "signed by the user's pinned cross-signing identity")
UNSIGNED_ALLOWED = TrustDecision(
    True, "not cross-signed; unsigned devices allowed by configuration"
)


def test_policy_keeps_the_reason_that_decided() -> None:
    assert decide_device(False, TrustPolicy.TOFU, None) == TrustDecision(False, "not an operator")
    assert decide_device(False, TrustPolicy.IDENTITY_TOFU, SIGNED).reason == "not an operator"
    tofu = decide_device(True, TrustPolicy.TOFU, None)
    assert tofu.trusted and "first use" in tofu.reason
    unknown = decide_device(True, TrustPolicy.IDENTITY_TOFU, None)
    assert not unknown.trusted and "no cross-signing data" in unknown.reason
    for policy in (TrustPolicy.IDENTITY_TOFU, TrustPolicy.VERIFIED_ONLY):
        assert decide_device(True, policy, UNSIGNED_ALLOWED) is UNSIGNED_ALLOWED
        assert decide_device(True, policy, SIGNED) is SIGNED


@dataclass
class FixedIdentity:
    """An `IdentityTrust` with set answers (None: the last keys query did not see it)."""

    answers: dict[str, TrustDecision | None]

    def decide_device(self, user_id: str, device: Any) -> TrustDecision | None:
        return self.answers.get(device.id)

    async def refresh(self, user_ids: Any) -> object:
        return None

    def take_announcements(self) -> list[str]:
        return []


def reasons(caplog: pytest.LogCaptureFixture) -> dict[tuple[str, str], tuple[str, str]]:
    """(user, device) -> (event, reason) of each trust change logged."""
    out = {}
    for record in caplog.records:
        f = getattr(record, "fields", {})
        if record.getMessage() in ("device_trusted", "device_distrusted"):
            out[(f["user"], f["device"])] = (record.getMessage(), f["reason"])
    return out


async def test_trust_pass_logs_the_true_reason_of_every_decision(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nio = offline_nio(tmp_path / "nio", SqliteStore)
    state = BotState(tmp_path / "bot.db")
    stranger = "@eve:example.org"
    try:
        room = MatrixRoom("!r:example.org", "@bot:example.org", encrypted=True)
        for user in ("@bot:example.org", OP, stranger):
            room.add_member(user, None, None)
        nio.rooms[room.room_id] = room
        devices = {
            name: olm_device(user, name)
            for user, name in ((OP, "LAPTOP"), (OP, "PHONE"), (OP, "NEW"), (stranger, "EVE"))
        }
        old_own = olm_device("@bot:example.org", "OLDINSTALL")
        for dev in [*devices.values(), old_own]:
            nio.device_store.add(dev)
            nio.store.save_device_keys({dev.user_id: {dev.id: dev}})
        identity = FixedIdentity({"LAPTOP": UNSIGNED_ALLOWED, "PHONE": SIGNED, "NEW": None})
        caplog.set_level(logging.INFO, logger="bot.matrix.trust")

        done = trust_pass(nio, state, {OP}, TrustPolicy.IDENTITY_TOFU, identity)
        assert reasons(caplog) == {
            # Allowed by configuration, not "signed by the operator's pinned identity".
            (OP, "LAPTOP"): ("device_trusted", UNSIGNED_ALLOWED.reason),
            (OP, "PHONE"): ("device_trusted", SIGNED.reason),
            (OP, "NEW"): ("device_distrusted", "no cross-signing data for this device yet"),
            (stranger, "EVE"): ("device_distrusted", "not an operator"),
        }
        assert done.identity_stale  # NEW: refresh identities before the next pass
        assert done.new_devices == []  # first sight of the operator is not news
        assert nio.olm is not None and nio.olm.is_device_blacklisted(old_own)

        # The keys query now knows NEW: trusted, and news (we knew this operator already).
        identity.answers["NEW"] = SIGNED
        caplog.clear()
        again = trust_pass(nio, state, {OP}, TrustPolicy.IDENTITY_TOFU, identity)
        assert reasons(caplog) == {(OP, "NEW"): ("device_trusted", SIGNED.reason)}
        assert not again.identity_stale
        assert again.new_devices == [
            NewDevice(OP, "NEW", fingerprint(devices["NEW"].ed25519), SIGNED.reason)
        ]
        # A device the caller is handling itself is left alone.
        identity.answers["PHONE"] = TrustDecision(False, "cross-signing identity changed")
        skipped = trust_pass(nio, state, {OP}, TrustPolicy.IDENTITY_TOFU, identity, {(OP, "PHONE")})
        assert skipped.changes.distrusted == []
        assert nio.olm.is_device_verified(devices["PHONE"])
    finally:
        state.close()
        await nio.close()
