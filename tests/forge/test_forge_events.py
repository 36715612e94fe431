"""Pure webhook logic: signatures, parsing the real Gitea bodies, rendering notices."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from bot.forge.events import (
    WITHHELD,
    BadDelivery,
    ForgeEvent,
    parse_delivery,
    render_notice,
    verify_signature,
)
from tests.forge.shared import DELIVERIES, body_of


def test_the_recorded_signatures_verify_with_the_recorded_secret() -> None:
    secret = DELIVERIES["secret"].encode()
    for d in DELIVERIES["deliveries"]:
        assert verify_signature(secret, body_of(d), d["headers"]["X-Gitea-Signature"])


def test_a_changed_byte_or_secret_or_missing_header_fails() -> None:
    d = DELIVERIES["deliveries"][0]
    body, sig = body_of(d), d["headers"]["X-Gitea-Signature"]
    secret = DELIVERIES["secret"].encode()
    assert not verify_signature(secret, body + b" ", sig)
    assert not verify_signature(b"other", body, sig)
    assert not verify_signature(secret, body, None)
    assert not verify_signature(secret, body, "")
    assert not verify_signature(secret, body, "zz" + sig[2:])


def test_sha256_prefix_and_case_are_accepted() -> None:
    body = b"{}"
    sig = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert verify_signature(b"k", body, "sha256=" + sig.upper())


@pytest.mark.parametrize(
    ("file", "event", "action", "needle"),
    [
        ("issues.opened.json", "issues", "opened", "opened"),
        ("issues.label_updated.json", "issues", "label_updated", "bug"),
        ("issue_comment.created.json", "issue_comment", "created", "💬"),
    ],
)
def test_real_bodies_parse_into_notices(file: str, event: str, action: str, needle: str) -> None:
    d = next(x for x in DELIVERIES["deliveries"] if x["file"] == file)
    assert d["headers"]["X-Gitea-Event"] == event
    parsed = parse_delivery(event, json.loads(body_of(d)))
    assert parsed is not None
    assert parsed.repo == "example/example"
    assert parsed.action == action
    assert parsed.number > 0
    line = render_notice([parsed])
    assert needle in line
    assert f"#{parsed.number}" in line


def test_unhandled_events_and_actions_are_ignored() -> None:
    payload = json.loads(body_of(DELIVERIES["deliveries"][0]))
    assert parse_delivery("push", payload) is None
    assert parse_delivery("issues", {**payload, "action": "edited"}) is None


def test_a_malformed_body_is_an_error_not_a_crash() -> None:
    with pytest.raises(BadDelivery):
        parse_delivery("issues", {"action": "opened", "issue": {}})


def test_crisis_text_in_a_comment_is_not_echoed_into_the_room() -> None:
    d = next(x for x in DELIVERIES["deliveries"] if x["file"] == "issue_comment.created.json")
    payload = json.loads(body_of(d))
    payload["comment"]["body"] = "honestly I want to kill myself tonight"
    parsed = parse_delivery("issue_comment", payload)
    assert parsed is not None
    notice = render_notice([parsed])
    assert WITHHELD in notice and "kill myself" not in notice
    payload["issue"]["title"] = "I want to end my life tonight"
    parsed = parse_delivery("issue_comment", payload)
    assert parsed is not None
    assert "end my life" not in render_notice([parsed, parsed])


def test_a_burst_is_one_message_with_a_count_and_a_cap() -> None:
    events = [
        ForgeEvent("o/r", "issues", "opened", n, f"issue {n}", f"http://g/o/r/issues/{n}", "bob")
        for n in range(1, 41)
    ]
    text = render_notice(events)
    assert text.startswith("40 forge events in o/r:")
    assert "#1 issue 1" in text
    assert "… and 25 more" in text
    assert "#40 " not in text


def test_event_round_trips_through_json() -> None:
    e = ForgeEvent("o/r", "issue_comment", "created", 3, "t", "u", "a", "d ü")
    assert ForgeEvent.from_json(e.to_json()) == e
