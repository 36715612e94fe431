"""Results signed by their wolf's Nostr key (issue #13): what verifies and what does not.

The signature is over the wire fields (all but `sig`), so a field a newer wolf adds is
covered by it and an older bot that does not know the field still checks it."""

from __future__ import annotations

import json

from fleetcore.bus.messages import (
    Outcome,
    Reason,
    Result,
    Task,
    check_result_signature,
    result_digest,
    sign_result,
)
from fleetcore.identity.nostr import NostrKey


def _result(**changes: object) -> Result:
    task = Task.new("b1", "web", "acme/web", 4, "wolves")
    result = Result.for_task(task, Outcome.DONE, Reason.TRIAGED, "wolf-1", "triaged")
    return result.model_copy(update=changes) if changes else result


def _tamper(data: bytes, **changes: object) -> bytes:
    wire = json.loads(data)
    wire.update(changes)
    return json.dumps(wire).encode()


def test_a_signed_result_verifies_against_its_wolfs_npub() -> None:
    key = NostrKey.generate()
    signed = sign_result(_result(), key)
    data = signed.to_bytes()
    assert signed.npub == key.npub and signed.sig is not None and len(signed.sig) == 128
    assert check_result_signature(data, key.npub) is None
    # It still decodes as a result, carrying its identity.
    assert Result.from_bytes(data).npub == key.npub


def test_any_changed_field_breaks_the_signature() -> None:
    key = NostrKey.generate()
    data = sign_result(_result(), key).to_bytes()
    for change in (
        {"outcome": "failed"},
        {"detail": "triaged, and more"},
        {"issue_number": 5},
        {"comment_url": "http://evil.invalid/"},
        {"provider": "someone-else"},
    ):
        assert check_result_signature(_tamper(data, **change), key.npub) == "bad signature"


def test_unsigned_unknown_and_other_keys_are_refused() -> None:
    key, other = NostrKey.generate(), NostrKey.generate()
    assert check_result_signature(_result().to_bytes(), key.npub) == "unsigned"
    data = sign_result(_result(), key).to_bytes()
    assert check_result_signature(data, None) == "unknown agent (no npub registered)"
    # Signed by a key that is not the one registered for the wolf: a message cannot vouch
    # for itself by naming its own npub.
    forged = sign_result(_result(), other).to_bytes()
    assert check_result_signature(forged, key.npub) == "signed by another key than the agent's"
    # The right npub claimed, someone else's signature.
    swapped = _tamper(forged, npub=key.npub)
    assert check_result_signature(swapped, key.npub) == "bad signature"
    assert check_result_signature(_tamper(data, sig="zz" * 64), key.npub) == "malformed signature"
    assert check_result_signature(_tamper(data, sig=12), key.npub) == "malformed signature"
    assert check_result_signature(b"[1]", key.npub) == "not a JSON object"
    assert check_result_signature(b"{", key.npub) == "not JSON"


def test_a_newer_wolfs_extra_field_is_signed_and_still_checks() -> None:
    key = NostrKey.generate()
    wire = json.loads(_result(npub=key.npub).to_bytes())
    wire["reviewed_by"] = "a field this version does not know"
    wire["sig"] = key.sign_schnorr(result_digest(wire)).hex()
    data = json.dumps(wire).encode()
    assert check_result_signature(data, key.npub) is None
    assert check_result_signature(_tamper(data, reviewed_by="changed"), key.npub) == (
        "bad signature"
    )
    Result.from_bytes(data)  # and the decoder ignores the field it does not know
