"""Matrix canonical JSON and Ed25519 signatures over it, through `canonicaljson`/`signedjson`.

The encoding and the signing are the libraries Synapse itself signs with (Matrix.org's own
packages), so our signatures and Synapse's checks cannot drift apart. Two things stay here:

- `canonicaljson` 2.0 encodes floats and integers outside [-(2**53)+1, (2**53)-1], which the
  spec forbids (appendices, "Canonical JSON"); `_check` refuses them, so we never sign what
  another implementation could encode differently, and an object carrying them never
  verifies;
- `signedjson.sign.sign_json` signs in place and wants keys carrying `alg`/`version`; the
  wrappers keep our inputs untouched and take a plain key id, and `verify_signature` turns
  every failure into False, whatever a server sent.

Base64 is the spec's unpadded standard alphabet; decoding is strict (`unpaddedbase64`
decodes the URL-safe alphabet too and skips characters that are not base64 at all).
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import signedjson.key
import signedjson.sign
from canonicaljson import encode_canonical_json
from nacl.signing import SigningKey, VerifyKey

_MAX_INT = 2**53 - 1


class CanonicalJsonError(ValueError):
    """A value that Matrix canonical JSON cannot represent (a float, a huge integer...)."""


def unpadded_b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def unpadded_b64decode(text: str) -> bytes:
    """Accepts unpadded (and padded) standard base64; raises ValueError on anything else."""
    stripped = text.rstrip("=")
    if len(stripped) % 4 == 1:
        raise ValueError("invalid base64 length")
    return base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)


def _check(value: Any) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if not -_MAX_INT <= value <= _MAX_INT:
            raise CanonicalJsonError(f"integer out of canonical JSON range: {value}")
        return
    if isinstance(value, float):
        raise CanonicalJsonError("floats are not allowed in canonical JSON")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalJsonError("object keys must be strings")
            _check(item)
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check(item)
        return
    raise CanonicalJsonError(f"not a JSON value: {type(value).__name__}")


def canonical_json(value: Any) -> bytes:
    """Matrix canonical JSON as UTF-8 bytes."""
    _check(value)
    return encode_canonical_json(value)


def _signed_part(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}


def key_id_for(public_key: bytes | VerifyKey) -> str:
    """`ed25519:<unpadded base64 of the public key>`, the id cross-signing keys use."""
    raw = bytes(public_key)
    return f"ed25519:{unpadded_b64encode(raw)}"


def public_b64(signing_key: SigningKey) -> str:
    return unpadded_b64encode(bytes(signing_key.verify_key))


def sign_json(
    obj: dict[str, Any], user_id: str, key_id: str, signing_key: SigningKey
) -> dict[str, Any]:
    """A signed copy of `obj`; the input is not modified and earlier signatures are kept."""
    _check(_signed_part(obj))
    algorithm, _, version = key_id.partition(":")
    # signedjson names the key by the `alg:version` it carries: a fresh key object, so the
    # caller's key is never mutated.
    key = signedjson.key.decode_signing_key_base64(
        algorithm, version, unpadded_b64encode(bytes(signing_key))
    )
    return signedjson.sign.sign_json(copy.deepcopy(obj), user_id, key)


def verify_signature(obj: dict[str, Any], user_id: str, key_id: str, public_key: str) -> bool:
    """True when `obj` carries a valid signature by `user_id`/`key_id` made with `public_key`.

    Never raises on hostile input (bad base64, wrong lengths, floats from a server): any such
    object simply does not verify.
    """
    try:
        if not isinstance(obj["signatures"][user_id][key_id], str):
            return False
        _check(_signed_part(obj))
        verify_key = signedjson.key.decode_verify_key_bytes(key_id, unpadded_b64decode(public_key))
        signedjson.sign.verify_signed_json(obj, user_id, verify_key)
    except Exception:  # SignatureVerifyException, KeyError, TypeError, ValueError, nacl's own
        return False
    return True
