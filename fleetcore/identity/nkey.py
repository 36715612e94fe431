"""NATS user NKeys: an ed25519 seed `SU...` and its public key `U...`.

The NATS server only ever learns the public key (it goes in the server's authorization
config); the seed stays with the agent, in a 0600 file that nats-py reads itself
(`connect(nkeys_seed=path)`). Unlike a Nostr key an NKey is revocable: drop its public key from
the server config and it is dead.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field

import nacl.exceptions
import nacl.signing
import nkeys


class NKeyError(ValueError):
    """A malformed seed or public key."""


@dataclass(frozen=True)
class UserNKey:
    """A NATS user keypair; `repr` shows only the public key."""

    _seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not self._seed.startswith(b"SU"):
            raise NKeyError("not a NATS user seed (expected SU...)")
        try:
            nkeys.from_seed(bytearray(self._seed)).public_key  # noqa: B018 - validates
        except Exception:  # nkeys raises its own error classes and binascii ones
            raise NKeyError("not a valid NATS user seed") from None

    @classmethod
    def generate(cls) -> UserNKey:
        return cls(bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)))

    @classmethod
    def from_seed(cls, seed: str | bytes) -> UserNKey:
        raw = seed.encode() if isinstance(seed, str) else bytes(seed)
        return cls(raw.strip())

    def __repr__(self) -> str:
        return f"UserNKey({self.public})"

    @property
    def public(self) -> str:
        """The `U...` public key, for the NATS server's authorization block."""
        return str(nkeys.from_seed(bytearray(self._seed)).public_key.decode())

    def seed_secret(self) -> str:
        """The `SU...` seed, for writing to a 0600 file and nowhere else."""
        return self._seed.decode()

    def sign(self, data: bytes) -> bytes:
        return bytes(nkeys.from_seed(bytearray(self._seed)).sign(data))


def decode_public(public: str) -> tuple[int, bytes]:
    """(prefix byte, 32-byte ed25519 key) of a public NKey, its CRC-16 checked.

    nkeys 0.2 has no public-key-only constructor, so this follows the NKeys format
    (base32 of prefix || key || crc16-LE) with the package's own `crc16`.
    """
    text = public.strip()
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        raise NKeyError("not a public NKey (base32)") from None
    if len(raw) != 35:
        raise NKeyError("not a public NKey (wrong length)")
    body, crc = raw[:-2], int.from_bytes(raw[-2:], "little")
    if nkeys.crc16(bytearray(body)) != crc:
        raise NKeyError("not a public NKey (checksum)")
    if not nkeys.valid_public_prefix_byte(body[0]):
        raise NKeyError("not a public NKey (prefix)")
    return body[0], bytes(body[1:])


def verify(public: str, data: bytes, sig: bytes) -> bool:
    """Check an ed25519 signature by a public NKey (`U...` or another role)."""
    try:
        _, key = decode_public(public)
        nacl.signing.VerifyKey(key).verify(data, sig)
    except (NKeyError, nacl.exceptions.BadSignatureError, ValueError):
        return False
    return True


def is_user_public(value: str) -> bool:
    """A well-formed `U...` public NKey (checksum included)."""
    try:
        prefix, _ = decode_public(value)
    except NKeyError:
        return False
    return prefix == nkeys.PREFIX_BYTE_USER
