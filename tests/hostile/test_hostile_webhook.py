"""The webhook's decoder against arbitrary bytes, headers and JSON (issue #14).

`decode_delivery` is the whole of what the receiver does with untrusted input before it
stores anything, so "never a 500" is "this function never raises". What it accepts must
also be storable and sendable: valid UTF-8, and a notice that fits in a Matrix event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.forge import events
from bot.forge.events import (
    MAX_DEPTH,
    TITLE_CHARS,
    Delivery,
    ForgeEvent,
    Rejection,
    decode_delivery,
    json_depth,
    render_notice,
)
from tests.forge.shared import DELIVERIES, body_of
from tests.hostile.strategies import depth_of, json_values, mutated, texts

SECRET = b"hostile-test-secret"
RECORDED = {d["file"]: (d["headers"]["X-Gitea-Event"], json.loads(body_of(d))) for d in
            DELIVERIES["deliveries"]}  # fmt: skip
# Notices are capped far below Matrix's 64 KB event limit, whatever the payload held.
NOTICE_LIMIT = 4096


def _screen_contract(text: str) -> SimpleNamespace:
    """The crisis screen's side of the contract: short, valid UTF-8 text, every time."""
    text.encode("utf-8")
    assert len(text) <= TITLE_CHARS
    return SimpleNamespace(is_crisis=False)


@pytest.fixture(scope="module", autouse=True)
def contract_screen() -> Iterator[None]:
    """The real detector takes half a second a text (tests/forge runs it on real payloads);
    here it is replaced by a check of what it is given, so hundreds of examples stay fast."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(events, "screen", _screen_contract)
        yield


def signed(body: bytes, event: str = "issues", delivery: str = "d-1") -> dict[str, str]:
    return {
        "X-Gitea-Event": event,
        "X-Gitea-Delivery": delivery,
        "X-Gitea-Signature": hmac.new(SECRET, body, hashlib.sha256).hexdigest(),
    }


def check(result: Delivery | Rejection) -> None:
    """What any answer must be: a typed rejection, or an event that can be stored and sent."""
    assert isinstance(result, Delivery | Rejection)
    if isinstance(result, Rejection):
        assert result.status in (400, 401) and result.reason
        return
    if result.event is not None:
        stored = result.event.to_json()
        stored.encode("utf-8")  # no lone surrogates: SQLite and nio both refuse them
        assert ForgeEvent.from_json(stored) == result.event
        notice = render_notice([result.event] * 30)
        notice.encode("utf-8")
        assert len(notice.encode()) < NOTICE_LIMIT * 4
        assert len(render_notice([result.event]).encode()) < NOTICE_LIMIT


header_maps = st.dictionaries(
    st.sampled_from(["X-Gitea-Event", "X-Gitea-Delivery", "X-Gitea-Signature", "Other"]),
    texts,
    max_size=4,
)


@given(body=st.binary(max_size=2000), headers=header_maps)
def test_unsigned_bytes_and_headers_are_refused_never_raised(
    body: bytes, headers: dict[str, str]
) -> None:
    result = decode_delivery(SECRET, body, headers)
    assert isinstance(result, Rejection) and result.status == 401


@given(body=st.binary(max_size=2000), event=texts, delivery=texts)
def test_signed_bytes_give_a_delivery_or_a_rejection(
    body: bytes, event: str, delivery: str
) -> None:
    check(decode_delivery(SECRET, body, signed(body, event, delivery)))


@given(value=json_values, event=st.sampled_from(["issues", "issue_comment", "push", ""]))
def test_signed_arbitrary_json_gives_a_delivery_or_a_rejection(value: Any, event: str) -> None:
    body = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    check(decode_delivery(SECRET, body, signed(body, event)))


@pytest.mark.parametrize("file", sorted(RECORDED))
@settings(max_examples=100)  # three files: 300 in all
@given(data=st.data())
def test_signed_mutations_of_real_deliveries_are_handled(file: str, data: st.DataObject) -> None:
    """Gitea's own payloads with a few fields replaced or removed: the shapes that matter."""
    event, payload = RECORDED[file]
    value = data.draw(mutated(payload))
    body = json.dumps(value).encode()
    check(decode_delivery(SECRET, body, signed(body, event)))


@given(value=json_values, ensure_ascii=st.booleans())
def test_json_depth_is_the_true_depth(value: Any, ensure_ascii: bool) -> None:
    body = json.dumps(value, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")
    assert json_depth(body) == depth_of(value)


@pytest.mark.parametrize("n", [MAX_DEPTH + 1, 1000, 100_000, 1_000_000])
@pytest.mark.parametrize("open_", [b"[", b'{"a":'])
def test_deep_nesting_is_refused_by_the_depth_check(n: int, open_: bytes) -> None:
    """Measured before parsing: json.loads never sees it, so it never recurses on it."""
    body = open_ * n
    result = decode_delivery(SECRET, body, signed(body))
    assert result == Rejection(400, "JSON nested too deeply")


def test_the_depth_limit_still_admits_a_real_payload() -> None:
    _, payload = RECORDED["issue_comment.created.json"]
    assert depth_of(payload) < MAX_DEPTH
    nested: Any = "x"
    for _ in range(MAX_DEPTH - 1):
        nested = [nested]
    body = json.dumps({"action": "noop", "x": nested}).encode()
    assert json_depth(body) == MAX_DEPTH
    assert isinstance(decode_delivery(SECRET, body, signed(body)), Delivery)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "body",
    [
        b'"' + b'\\"' * 1_000_000,  # every quote restarts a naive string scan: quadratic
        b'"' * 2_000_000,
        b"[" * 2_000_000,
        b"\\" * 2_000_000,
    ],
    ids=["escaped-quotes", "quotes", "brackets", "backslashes"],
)
def test_json_depth_is_linear_on_inputs_that_are_quadratic_for_a_naive_scan(body: bytes) -> None:
    """2 MB (the body cap) of each: linear is a fraction of a second, quadratic is hours."""
    assert json_depth(body) >= 0
