"""Matrix canonical JSON and Ed25519 signatures over it.

Written on the standard library and pynacl rather than `canonicaljson`/`signedjson` so the bot
does not take a runtime dependency on Synapse's helper packages; the tests cross-check the
result against an independent hand-built encoding (and signedjson, which Synapse brings).

Spec (appendices, "Signing JSON"): the signed form is the object without `signatures` and
`unsigned`; after signing, both come back, with the new signature added next to the existing
ones. Keys are sorted by code point, no insignificant whitespace, UTF-8 without escapes, and
only integers in the interoperable range (floats are not canonical JSON).
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from nacl.exceptions import BadSignatureError
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
    # Python's sort_keys compares str by code point, which is what the spec asks for.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def signable_bytes(obj: dict[str, Any]) -> bytes:
    """The bytes a signature covers: the object without `signatures` and `unsigned`."""
    return canonical_json({k: v for k, v in obj.items() if k not in ("signatures", "unsigned")})


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
    signature = signing_key.sign(signable_bytes(obj)).signature
    out = copy.deepcopy(obj)
    sigs = out.setdefault("signatures", {})
    sigs.setdefault(user_id, {})[key_id] = unpadded_b64encode(signature)
    return out


def verify_signature(obj: dict[str, Any], user_id: str, key_id: str, public_key: str) -> bool:
    """True when `obj` carries a valid signature by `user_id`/`key_id` made with `public_key`.

    Never raises on hostile input (bad base64, wrong lengths, floats from a server): any such
    object simply does not verify.
    """
    try:
        sig_b64 = obj["signatures"][user_id][key_id]
        if not isinstance(sig_b64, str):
            return False
        signature = unpadded_b64decode(sig_b64)
        verify_key = VerifyKey(unpadded_b64decode(public_key))
        verify_key.verify(signable_bytes(obj), signature)
    except (KeyError, TypeError, ValueError, BadSignatureError, CanonicalJsonError):
        return False
    except Exception:  # nacl raises its own ValueError subclasses, but be total here
        return False
    return True
