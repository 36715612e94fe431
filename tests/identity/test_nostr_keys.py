"""Known answers for NIP-19, BIP-340 and NKeys, from /work/shared/gitea/test-vectors.json."""

from __future__ import annotations

import json
from typing import Any

import bech32
import pytest

from fleetcore.identity.nkey import UserNKey, decode_public, is_user_public, verify
from fleetcore.identity.nostr import (
    NostrError,
    NostrKey,
    bech32_decode32,
    npub_decode,
    npub_encode,
    schnorr_verify,
)
from fleettest.gitea_schema import shared_dir


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((shared_dir() / "gitea" / "test-vectors.json").read_text())
    return data


def test_nip19_vectors(vectors: dict[str, Any]) -> None:
    nip19 = vectors["nip19"]
    for case in (nip19["npub"], nip19["npub_example2"]):
        assert npub_encode(case["hex"]) == case["bech32"]
        assert npub_decode(case["bech32"]) == case["hex"]
    key = NostrKey.from_nsec(nip19["nsec"]["bech32"])
    assert key == NostrKey.from_secret_hex(nip19["nsec"]["hex"])
    assert key.nsec_secret() == nip19["nsec"]["bech32"]
    # The vector's nsec derives to the vector's npub (BIP-340 x-only public key).
    assert key.public_hex == nip19["npub"]["hex"]
    assert key.npub == nip19["npub"]["bech32"]


def test_npub_nsec_round_trip_and_secret_stays_out_of_repr() -> None:
    for _ in range(20):
        key = NostrKey.generate()
        assert NostrKey.from_nsec(key.nsec_secret()) == key
        assert npub_encode(npub_decode(key.npub)) == key.npub
        assert key.npub.startswith("npub1") and len(key.npub) == 63
        assert key.nsec_secret() not in repr(key)
        assert key.nsec_secret() not in str(key)


def test_nip19_refuses_the_wrong_prefix_bech32m_and_a_bad_checksum(
    vectors: dict[str, Any],
) -> None:
    npub = vectors["nip19"]["npub"]["bech32"]
    with pytest.raises(NostrError, match="npub1"):
        NostrKey.from_nsec(npub)
    flipped = npub[:-1] + ("q" if npub[-1] != "q" else "p")
    with pytest.raises(NostrError):
        npub_decode(flipped)
    # The same payload with bech32m's checksum constant is not a NIP-19 key.
    hrp, words = bech32.bech32_decode(npub)
    assert hrp == "npub" and words is not None
    const = bech32.bech32_polymod([*bech32.bech32_hrp_expand(hrp), *words, 0, 0, 0, 0, 0, 0])
    polymod = const ^ 0x2BC830A3
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    m = hrp + "1" + "".join(bech32.CHARSET[d] for d in [*words, *checksum])
    with pytest.raises(NostrError):
        bech32_decode32("npub", m)


def test_bip340_vector(vectors: dict[str, Any]) -> None:
    v = vectors["bip340"]
    key = NostrKey.from_secret_hex(v["seckey"])
    assert key.public_hex == v["pubkey_xonly"].lower()
    msg, aux = bytes.fromhex(v["message"]), bytes.fromhex(v["aux_rand"])
    sig = key.sign_schnorr(msg, aux)
    assert sig.hex() == v["signature"].lower()
    assert schnorr_verify(v["pubkey_xonly"].lower(), msg, sig)
    assert not schnorr_verify(v["pubkey_xonly"].lower(), b"\x01" * 32, sig)
    assert not schnorr_verify("00" * 32, msg, sig)  # not a curve point: invalid, not an error


def test_nkeys_vector(vectors: dict[str, Any]) -> None:
    v = vectors["nkeys"]
    key = UserNKey.from_seed(v["user_seed"])
    assert key.public == v["user_public"]
    assert key.seed_secret() == v["user_seed"]
    assert v["user_seed"] not in repr(key)
    assert is_user_public(v["user_public"])
    prefix, raw = decode_public(v["user_public"])
    assert prefix == 20 << 3 and len(raw) == 32
    sig = key.sign(b"nonce")
    assert verify(v["user_public"], b"nonce", sig)
    assert not verify(v["user_public"], b"other", sig)


def test_generated_nkeys_are_user_keys_with_valid_checksums() -> None:
    for _ in range(10):
        key = UserNKey.generate()
        assert key.seed_secret().startswith("SU") and len(key.seed_secret()) == 58
        assert key.public.startswith("U") and len(key.public) == 56
        assert is_user_public(key.public)
        assert UserNKey.from_seed(key.seed_secret() + "\n") == key
    broken = key.public[:-1] + ("A" if key.public[-1] != "A" else "B")
    assert not is_user_public(broken)
    assert not is_user_public("N" + key.public[1:])
