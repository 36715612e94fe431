"""Nostr identities: secp256k1 keys, NIP-19 `npub`/`nsec`, NIP-01 events with BIP-340 signatures.

Pure functions, no network: an agent's identity is made and checked offline. A Nostr secret
key cannot be revoked or rotated in place (there is no authority to tell that it was
replaced): whoever holds an `nsec` is that identity for good. So a `NostrKey` never shows its
secret in `repr`, and the only way to get it out is the explicitly named `nsec_secret()`.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import bech32
from coincurve import PrivateKey, PublicKeyXOnly

NPUB: str = "npub"
NSEC: str = "nsec"

# NIP-01: ids, public keys and signatures are lowercase hex of fixed length.
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")

IRREVOCABLE = (
    "a Nostr secret key cannot be revoked: whoever holds it is this identity for good; "
    "keep it private and back it up"
)


class NostrError(ValueError):
    """A malformed key, bech32 string or event."""


# --- NIP-19 -------------------------------------------------------------------------------


def bech32_encode32(hrp: str, data: bytes) -> str:
    """NIP-19's bare keys: 32 bytes in bech32 (BIP-173's checksum constant 1, not bech32m)."""
    if len(data) != 32:
        raise NostrError(f"{hrp}: expected 32 bytes, got {len(data)}")
    words = bech32.convertbits(data, 8, 5, True)
    assert words is not None
    return str(bech32.bech32_encode(hrp, words))


def bech32_decode32(hrp: str, text: str) -> bytes:
    """The 32 bytes of a bare NIP-19 key; anything else (wrong prefix, bech32m) is refused."""
    got_hrp, words = bech32.bech32_decode(text.strip())
    if got_hrp is None or words is None:
        raise NostrError(f"not a valid bech32 string (expected {hrp}1...)")
    if got_hrp != hrp:
        raise NostrError(f"expected a {hrp}1... key, got {got_hrp}1...")
    data = bech32.convertbits(words, 5, 8, False)
    if data is None or len(data) != 32:
        raise NostrError(f"{hrp}: the payload is not 32 bytes")
    return bytes(data)


def npub_encode(pubkey_hex: str) -> str:
    return bech32_encode32(NPUB, _hex32(pubkey_hex, "public key"))


def npub_decode(npub: str) -> str:
    """The hex x-only public key an `npub1...` names (NIP-01 uses hex on the wire)."""
    return bech32_decode32(NPUB, npub).hex()


def _hex32(value: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise NostrError(f"{what}: not hex") from None
    if len(raw) != 32:
        raise NostrError(f"{what}: expected 32 bytes, got {len(raw)}")
    return raw


# --- keys ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NostrKey:
    """A secp256k1 secret key and its BIP-340 x-only public key."""

    _secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self._secret) != 32:
            raise NostrError("a Nostr secret key is 32 bytes")
        try:
            PrivateKey(self._secret)
        except ValueError:
            raise NostrError("not a valid secp256k1 secret key") from None

    @classmethod
    def generate(cls) -> NostrKey:
        """A fresh key from the OS's randomness. It is irrevocable once published."""
        return cls(PrivateKey().secret)

    @classmethod
    def from_nsec(cls, nsec: str) -> NostrKey:
        return cls(bech32_decode32(NSEC, nsec))

    @classmethod
    def from_secret_hex(cls, secret_hex: str) -> NostrKey:
        return cls(_hex32(secret_hex, "secret key"))

    def __repr__(self) -> str:
        return f"NostrKey({self.npub})"

    @property
    def public_hex(self) -> str:
        """The x-only public key, lowercase hex, as NIP-01 events carry it."""
        return PrivateKey(self._secret).public_key_xonly.format().hex()

    @property
    def npub(self) -> str:
        return npub_encode(self.public_hex)

    def nsec_secret(self) -> str:
        """The secret as `nsec1...`, for writing to a 0600 file and nowhere else."""
        return bech32_encode32(NSEC, self._secret)

    def sign_schnorr(self, msg32: bytes, aux_randomness: bytes = b"") -> bytes:
        """BIP-340 over a 32-byte message; `b""` draws fresh aux randomness (the default)."""
        return bytes(PrivateKey(self._secret).sign_schnorr(msg32, aux_randomness))

    def sign_event(
        self,
        kind: int,
        content: str,
        tags: list[list[str]] | None = None,
        created_at: int | None = None,
    ) -> Event:
        """A signed NIP-01 event by this key."""
        tags = [list(t) for t in tags or []]
        at = int(time.time()) if created_at is None else created_at
        event_id = event_id_hex(self.public_hex, at, kind, tags, content)
        sig = self.sign_schnorr(bytes.fromhex(event_id))
        return Event(event_id, self.public_hex, at, kind, tags, content, sig.hex())


def schnorr_verify(pubkey_hex: str, msg32: bytes, sig: bytes) -> bool:
    """BIP-340 verification; a malformed key or signature is simply not valid."""
    try:
        return bool(PublicKeyXOnly(_hex32(pubkey_hex, "public key")).verify(sig, msg32))
    except (ValueError, NostrError):
        return False


# --- NIP-01 events ------------------------------------------------------------------------


def serialize_for_id(
    pubkey_hex: str, created_at: int, kind: int, tags: list[list[str]], content: str
) -> bytes:
    """NIP-01's serialisation: `[0,pubkey,created_at,kind,tags,content]`, no whitespace, UTF-8.

    NIP-01 escapes only `"`, `\\`, and the control characters (`\\n`, `\\r`, `\\t`, `\\b`,
    `\\f` short; others as `\\u00xx`) and writes every other character as itself: exactly
    `json.dumps` with `ensure_ascii=False` (and what `JSON.stringify` does).
    """
    return json.dumps(
        [0, pubkey_hex, created_at, kind, tags, content],
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")


def event_id_hex(
    pubkey_hex: str, created_at: int, kind: int, tags: list[list[str]], content: str
) -> str:
    return hashlib.sha256(serialize_for_id(pubkey_hex, created_at, kind, tags, content)).hexdigest()


@dataclass(frozen=True)
class Event:
    id: str
    pubkey: str
    created_at: int
    kind: int
    tags: list[list[str]]
    content: str
    sig: str

    @property
    def npub(self) -> str:
        return npub_encode(self.pubkey)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pubkey": self.pubkey,
            "created_at": self.created_at,
            "kind": self.kind,
            "tags": self.tags,
            "content": self.content,
            "sig": self.sig,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> Event:
        """Shape-checked (types only); `verify()` says whether it is genuine."""
        if not isinstance(data, dict):
            raise NostrError("an event is a JSON object")
        try:
            tags = data["tags"]
            if not isinstance(tags, list) or not all(
                isinstance(t, list) and all(isinstance(s, str) for s in t) for t in tags
            ):
                raise NostrError("event tags: expected a list of lists of strings")
            fields: dict[str, Any] = {
                "id": data["id"],
                "pubkey": data["pubkey"],
                "created_at": data["created_at"],
                "kind": data["kind"],
                "content": data["content"],
                "sig": data["sig"],
            }
        except KeyError as exc:
            raise NostrError(f"event: missing {exc.args[0]!r}") from None
        for name, typ in (("id", str), ("pubkey", str), ("content", str), ("sig", str)):
            if not isinstance(fields[name], typ):
                raise NostrError(f"event {name}: expected a string")
        for name in ("created_at", "kind"):
            value = fields[name]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise NostrError(f"event {name}: expected a non-negative integer")
        return cls(tags=[list(t) for t in tags], **fields)

    @classmethod
    def from_json(cls, text: str | bytes) -> Event:
        try:
            data = json.loads(text)
        except ValueError:
            raise NostrError("event: not JSON") from None
        return cls.from_dict(data)

    def verify(self) -> bool:
        """The id is the hash of the content the event states, and the author signed that id."""
        if not (
            _HEX64.fullmatch(self.id)
            and _HEX64.fullmatch(self.pubkey)
            and _HEX128.fullmatch(self.sig)
        ):
            return False
        try:
            expected = event_id_hex(
                self.pubkey, self.created_at, self.kind, self.tags, self.content
            )
        except UnicodeEncodeError:  # a lone surrogate: not UTF-8, so not an event
            return False
        if expected != self.id:
            return False
        return schnorr_verify(self.pubkey, bytes.fromhex(expected), bytes.fromhex(self.sig))

    def tag(self, name: str) -> str | None:
        """The first value of the first tag called `name`."""
        for t in self.tags:
            if len(t) >= 2 and t[0] == name:
                return t[1]
        return None


def profile_event(key: NostrKey, name: str, about: str, created_at: int | None = None) -> Event:
    """NIP-01 kind 0 (user metadata): content is the JSON profile."""
    content = json.dumps({"name": name, "about": about}, ensure_ascii=False, separators=(",", ":"))
    return key.sign_event(0, content, [], created_at)
