"""NKeys: the `nkeys` package and our seed check against published known answers, and auth
through nats-py's own NKey support against a real server."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import nacl.signing
import nkeys
import pytest

from fleet.local.nats import NatsServer
from fleetcore.bus.connect import (
    BusAuthError,
    NKeyError,
    connect,
    load_nkey_seed,
    nkey_public_key,
)

SHARED = Path(os.environ.get("HERMES_SHARED_DIR") or Path(__file__).resolve().parents[3] / "shared")
VECTORS = json.loads((SHARED / "gitea" / "test-vectors.json").read_text())["nkeys"]


def test_nkeys_crc_is_xmodem() -> None:
    # The standard check value of CRC-16/XMODEM, the checksum in every NKey.
    assert nkeys.crc16(b"123456789") == 0x31C3


def test_seed_derives_the_published_public_key() -> None:
    assert nkey_public_key(VECTORS["user_seed"]) == VECTORS["user_public"]
    pair = nkeys.from_seed(bytearray(VECTORS["user_seed"].encode()))
    assert pair.public_key.decode() == VECTORS["user_public"]
    assert VECTORS["user_seed"].startswith("SU") and len(VECTORS["user_seed"]) == 58


def test_seed_and_public_key_round_trip() -> None:
    prefix, raw = nkeys.decode_seed(VECTORS["user_seed"].encode())
    assert prefix == nkeys.PREFIX_BYTE_USER == 20 << 3 and len(raw) == 32
    assert nkeys.encode_seed(raw, prefix).decode() == VECTORS["user_seed"]
    assert nkeys.PREFIX_BYTE_SEED == 18 << 3


def test_signature_verifies_with_the_public_key() -> None:
    # What nats-py sends for the server's nonce: an Ed25519 signature by the seed's key.
    pair = nkeys.from_seed(bytearray(VECTORS["user_seed"].encode()))
    signature = pair.sign(b"nonce-123")
    assert pair.verify(b"nonce-123", signature)
    _, raw = nkeys.decode_seed(VECTORS["user_seed"].encode())
    nacl.signing.SigningKey(bytes(raw)).verify_key.verify(b"nonce-123", signature)


@pytest.mark.parametrize(
    ("mangle", "problem"),
    [
        (lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"), "checksum"),
        (lambda s: s[:20] + ("A" if s[20] != "A" else "C") + s[21:], "checksum"),  # a typo
        (lambda s: s[:20], "58 base32 characters"),  # truncated
        (lambda s: s.lower(), "58 base32 characters"),  # not base32 upper case
        (lambda s: "U" + s[1:], "starting with S"),  # not a seed
    ],
)
def test_corrupted_seeds_are_refused(mangle: Callable[[str], str], problem: str) -> None:
    # The `nkeys` package does not check a seed's checksum: a typo would derive another key.
    with pytest.raises(NKeyError, match=problem):
        nkey_public_key(mangle(VECTORS["user_seed"]))


def test_a_public_key_is_not_a_seed() -> None:
    with pytest.raises(NKeyError):
        nkey_public_key(VECTORS["user_public"])


def test_seed_file_errors_never_show_the_seed(tmp_path: Path) -> None:
    seed = VECTORS["user_seed"]
    bad = tmp_path / "bad.nk"
    bad.write_text(seed[:-2] + "AA\n")
    bad.chmod(0o600)
    with pytest.raises(NKeyError) as info:
        load_nkey_seed(bad)
    assert seed[:-2] not in str(info.value) and str(bad) in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    with pytest.raises(NKeyError, match="cannot read"):
        load_nkey_seed(tmp_path / "missing.nk")
    good = _seed_file(tmp_path / "good.nk", seed)
    loaded = load_nkey_seed(good)
    assert loaded.public_key == VECTORS["user_public"]
    assert seed not in repr(loaded) and seed[2:20] not in repr(loaded)


def test_a_world_readable_seed_file_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "open.nk"
    path.write_text(VECTORS["user_seed"] + "\n")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        assert load_nkey_seed(path).public_key == VECTORS["user_public"]
    assert "nkey_seed_file_readable_by_others" in caplog.text
    assert VECTORS["user_seed"] not in caplog.text


def _new_seed() -> str:
    raw = bytes(nacl.signing.SigningKey.generate())
    return str(nkeys.encode_seed(raw, nkeys.PREFIX_BYTE_USER).decode())


def _seed_file(path: Path, seed: str) -> Path:
    path.write_text(seed + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
async def nkey_server(
    tmp_path: Path, configured_nats: Callable[[Path, str], NatsServer]
) -> AsyncIterator[tuple[NatsServer, str]]:
    seed = _new_seed()
    public = nkey_public_key(seed)
    conf = 'authorization { users = [ { nkey: "' + public + '" } ] }\n'
    server = configured_nats(tmp_path / "nkey-nats", conf)
    await server.start()
    try:
        yield server, seed
    finally:
        await server.stop()


async def test_nkey_auth_accepts_the_right_seed_file(
    nkey_server: tuple[NatsServer, str], tmp_path: Path, make_config: Callable[..., Any]
) -> None:
    server, seed = nkey_server
    cfg = make_config(server.url, nkey_seed_file=_seed_file(tmp_path / "wolf.nk", seed))
    nc = await connect(cfg, "wolf-nkey", first_connect_timeout_s=10)
    try:
        assert nc.is_connected
        await nc.flush(timeout=5)
    finally:
        await nc.close()


async def test_nkey_auth_fails_clearly_with_a_wrong_seed(
    nkey_server: tuple[NatsServer, str],
    tmp_path: Path,
    make_config: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, _ = nkey_server
    wrong = _new_seed()
    cfg = make_config(server.url, nkey_seed_file=_seed_file(tmp_path / "wrong.nk", wrong))
    # No first_connect_timeout_s: a rejected key must fail by itself, not retry forever.
    with caplog.at_level(logging.INFO), pytest.raises(BusAuthError, match="rejected") as info:
        await connect(cfg, "wolf-wrong")
    assert nkey_public_key(wrong) in str(info.value)
    assert wrong not in caplog.text and wrong not in str(info.value)


async def test_no_credentials_against_an_nkey_server_fails_clearly(
    nkey_server: tuple[NatsServer, str], make_config: Callable[..., Any]
) -> None:
    server, _ = nkey_server
    with pytest.raises(BusAuthError, match="no nkey_seed_file"):
        await connect(make_config(server.url), "wolf-anon")


async def test_a_malformed_seed_file_fails_before_connecting(
    nkey_server: tuple[NatsServer, str], tmp_path: Path, make_config: Callable[..., Any]
) -> None:
    server, seed = nkey_server
    # A typo in the middle: the last character also holds unused padding bits, so changing
    # it can leave the decoded bytes (and the checksum) intact.
    typo = seed[:20] + ("A" if seed[20] != "A" else "C") + seed[21:]
    path = _seed_file(tmp_path / "typo.nk", typo)
    with pytest.raises(NKeyError, match="checksum"):
        await connect(make_config(server.url, nkey_seed_file=path), "wolf-typo")
