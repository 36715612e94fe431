"""Canonical JSON signing, checked by an independent Ed25519 verification."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import pytest
import signedjson.key
import signedjson.sign
from nacl.signing import SigningKey, VerifyKey

from bot.crosssign.keys import CrossSigningKeys, KeyFileError, fingerprint
from bot.crosssign.signing import (
    CanonicalJsonError,
    canonical_json,
    key_id_for,
    sign_json,
    unpadded_b64decode,
    unpadded_b64encode,
    verify_signature,
)

USER = "@bot:example.org"


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _hand_canonical(obj: dict[str, Any]) -> bytes:
    stripped = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    return json.dumps(stripped, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_signature_verifies_independently_over_hand_built_canonical_bytes() -> None:
    key = SigningKey.generate()
    key_id = key_id_for(key.verify_key)
    obj: dict[str, Any] = {
        "user_id": USER,
        "z": [3, {"b": 1, "a": "é ☃ \U0001f600"}],
        "a": True,
        "unsigned": {"device_display_name": "not covered"},
        "signatures": {"@other:x": {"ed25519:OTHER": "keepme"}},
    }
    signed = sign_json(obj, USER, key_id, key)

    sig = _b64decode(signed["signatures"][USER][key_id])
    # Raises BadSignatureError if our canonical form differs from the hand-built one.
    VerifyKey(bytes(key.verify_key)).verify(_hand_canonical(obj), sig)

    assert signed["signatures"]["@other:x"] == {"ed25519:OTHER": "keepme"}
    assert signed["unsigned"] == obj["unsigned"]
    assert "=" not in signed["signatures"][USER][key_id]
    assert key_id == "ed25519:" + base64.b64encode(bytes(key.verify_key)).decode().rstrip("=")
    # The input is untouched.
    assert USER not in obj["signatures"]


def test_canonical_json_bytes_are_exact() -> None:
    assert (
        canonical_json({"b": 2, "a": {"d": "☃", "c": []}})
        == '{"a":{"c":[],"d":"☃"},"b":2}'.encode()
    )


def test_changing_unsigned_keeps_signature_valid_but_changing_content_breaks_it() -> None:
    key = SigningKey.generate()
    kid = key_id_for(key.verify_key)
    pub = unpadded_b64encode(bytes(key.verify_key))
    signed = sign_json({"user_id": USER, "n": 1}, USER, kid, key)
    assert verify_signature(signed, USER, kid, pub)
    assert verify_signature({**signed, "unsigned": {"x": 1}}, USER, kid, pub)
    assert not verify_signature({**signed, "n": 2}, USER, kid, pub)
    assert not verify_signature(signed, "@someone:else", kid, pub)
    other = unpadded_b64encode(bytes(SigningKey.generate().verify_key))
    assert not verify_signature(signed, USER, kid, other)
    broken = json.loads(json.dumps(signed))
    broken["signatures"][USER][kid] = "!!notbase64"
    assert not verify_signature(broken, USER, kid, pub)


def test_agrees_with_signedjson_both_ways() -> None:
    ours = SigningKey.generate()
    kid = key_id_for(ours.verify_key)
    signed = sign_json({"user_id": USER, "x": "y"}, USER, kid, ours)
    vk = ours.verify_key
    vk.alg, vk.version = "ed25519", kid.split(":", 1)[1]  # type: ignore[attr-defined]
    signedjson.sign.verify_signed_json(signed, USER, vk)  # type: ignore[arg-type]

    theirs = signedjson.key.generate_signing_key("abc")
    obj = signedjson.sign.sign_json({"user_id": USER, "k": [1, 2]}, USER, theirs)
    pub = unpadded_b64encode(bytes(theirs.verify_key))
    assert verify_signature(obj, USER, "ed25519:abc", pub)


def test_floats_are_not_canonical() -> None:
    with pytest.raises(CanonicalJsonError):
        canonical_json({"a": 1.5})
    with pytest.raises(CanonicalJsonError):
        canonical_json({"a": 2**53})


def test_unpadded_base64_roundtrip() -> None:
    for n in range(0, 40):
        data = bytes(range(n))
        assert unpadded_b64decode(unpadded_b64encode(data)) == data


def test_keys_save_load_0600_and_cross_signatures(tmp_path: Path) -> None:
    keys = CrossSigningKeys.generate(USER)
    path = keys.save(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = CrossSigningKeys.load(tmp_path, USER)
    assert loaded is not None
    assert loaded.master_public == keys.master_public
    assert loaded.self_signing_public == keys.self_signing_public
    assert loaded.user_signing_public == keys.user_signing_public
    assert unpadded_b64encode(bytes(keys.master)) not in repr(keys)

    body = keys.upload_body()
    master = keys.master_public
    assert body["master_key"] == {
        "user_id": USER,
        "usage": ["master"],
        "keys": {f"ed25519:{master}": master},
    }
    for name, usage in (("self_signing_key", "self_signing"), ("user_signing_key", "user_signing")):
        obj = body[name]
        assert obj["usage"] == [usage]
        sig = _b64decode(obj["signatures"][USER][f"ed25519:{master}"])
        VerifyKey(_b64decode(master)).verify(_hand_canonical(obj), sig)

    with pytest.raises(KeyFileError):
        CrossSigningKeys.load(tmp_path, "@someone:else")
    assert CrossSigningKeys.load(tmp_path / "nothing", USER) is None
    (tmp_path / "cross_signing.json").write_text("{not json")
    with pytest.raises(KeyFileError):
        CrossSigningKeys.load(tmp_path, USER)


def test_fingerprint_groups_of_four() -> None:
    assert fingerprint("abcdefghij") == "abcd efgh ij"
    keys = CrossSigningKeys.generate(USER)
    assert keys.fingerprint.replace(" ", "") == keys.master_public
    assert all(len(g) == 4 for g in keys.fingerprint.split()[:-1])


def test_floats_are_never_signed_and_never_verify() -> None:
    key = SigningKey.generate()
    kid = key_id_for(key.verify_key)
    with pytest.raises(CanonicalJsonError):
        sign_json({"user_id": USER, "weight": 0.5}, USER, kid, key)
    # canonicaljson itself would encode the float, so a signature over it can exist; we
    # still refuse it (another implementation may encode the float differently).
    versioned = signedjson.key.decode_signing_key_base64(
        "ed25519", kid.split(":", 1)[1], unpadded_b64encode(bytes(key))
    )
    signed = signedjson.sign.sign_json({"user_id": USER, "weight": 0.5}, USER, versioned)
    assert not verify_signature(signed, USER, kid, unpadded_b64encode(bytes(key.verify_key)))
