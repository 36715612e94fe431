"""The classifier and cooldowns: pure, so every rule is checked without a network."""

from __future__ import annotations

import json

import httpx

from fleetcore.models.classify import Action, Failure, Kind, classify, retry_after_s
from fleetcore.models.config import ModelConfig, ProviderConfig, chain_warnings
from fleetcore.models.cooldown import Cooldowns


def decide(failure: Failure, attempt: int = 0):  # type: ignore[no-untyped-def]
    return classify(
        failure,
        attempt=attempt,
        short_cooldown_s=30,
        bad_key_cooldown_s=3600,
        now_epoch=1_000_000.0,
    )


def http(status: int, body: object, **headers: str) -> Failure:
    return Failure("http", status, json.dumps(body).encode(), headers)


def test_bad_key_is_a_long_cooldown() -> None:
    for code in (401, 403):
        d = decide(http(code, {"error": {"message": "invalid key"}}))
        assert (d.action, d.kind, d.cooldown_s) == (Action.FAILOVER, Kind.BAD_KEY, 3600)
    anthropic = http(
        401, {"type": "error", "error": {"type": "authentication_error", "message": "x"}}
    )
    assert decide(anthropic).kind is Kind.BAD_KEY


def test_retry_after_seconds_and_http_date() -> None:
    assert decide(http(429, {}, **{"Retry-After": "7"})).cooldown_s == 7
    date = "Mon, 12 Jan 1970 13:46:50 GMT"  # 1_000_010 epoch seconds
    assert decide(http(429, {}, **{"Retry-After": date})).cooldown_s == 10
    assert retry_after_s({"retry-after-ms": "1500"}, 0) == 1.5
    assert decide(http(429, {})).cooldown_s == 30  # no header: the short cooldown


def test_server_errors_and_overload() -> None:
    for code in (500, 502, 503, 529):
        d = decide(http(code, {}))
        assert (d.action, d.kind) == (Action.FAILOVER, Kind.DOWN)
    overloaded = http(529, {"type": "error", "error": {"type": "overloaded_error", "message": "o"}})
    assert decide(overloaded).kind is Kind.DOWN


def test_openrouter_wrapped_errors_in_a_200() -> None:
    body = {"error": {"code": 429, "message": "Rate limit", "metadata": {"provider_name": "X"}}}
    assert decide(http(200, body)).kind is Kind.RATE_LIMITED
    body = {"error": {"code": 502, "message": "bad gateway", "metadata": {"raw": "upstream"}}}
    d = decide(http(200, body))
    assert d.kind is Kind.DOWN and "upstream" in d.reason


def test_context_length_goes_to_a_larger_context() -> None:
    openai = {"error": {"code": "context_length_exceeded", "message": "maximum context length"}}
    assert decide(http(400, openai)).action is Action.LARGER_CONTEXT
    anthropic = {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "prompt is too long: 210000 tokens"},
    }
    assert decide(http(400, anthropic)).action is Action.LARGER_CONTEXT


def test_other_400s_abort_and_404_is_a_config_problem() -> None:
    assert decide(http(400, {"error": {"message": "messages: required"}})).action is Action.ABORT
    d = decide(http(404, {"error": {"message": "model not found"}}))
    assert (d.action, d.kind) == (Action.FAILOVER, Kind.MISCONFIGURED)


def test_transport_failures() -> None:
    refused = Failure("connect", exc=httpx.ConnectError("[Errno 111] Connection refused"))
    assert decide(refused).kind is Kind.DOWN
    dns = Failure("connect", exc=httpx.ConnectError("[Errno -2] Name or service not known"))
    assert "DNS" in decide(dns).reason
    assert decide(Failure("connect", exc=httpx.ConnectTimeout("t"))).kind is Kind.TIMEOUT
    assert decide(Failure("first_byte")).kind is Kind.TIMEOUT
    assert decide(Failure("total")).kind is Kind.TIMEOUT
    reset = Failure("reset", exc=httpx.ReadError("reset"))
    assert decide(reset, attempt=0).action is Action.RETRY_SAME
    assert decide(reset, attempt=1).action is Action.FAILOVER


def test_bad_bodies_fail_over_without_cooldown() -> None:
    d = decide(Failure("body", 200, b"{", detail="malformed JSON"))
    assert (d.action, d.kind, d.cooldown_s) == (Action.FAILOVER, Kind.BAD_RESPONSE, 0)


def test_cooldowns_only_ever_extend() -> None:
    now = [100.0]
    c = Cooldowns(lambda: now[0])
    c.extend("a", 3600, "bad_key", "key")
    c.extend("a", 5, "rate_limited", "429")
    assert c.remaining("a") == 3600 and c.get("a").kind == "bad_key"  # type: ignore[union-attr]
    c.extend("b", 5, "rate_limited", "429")
    c.extend("b", 50, "down", "503")
    assert c.remaining("b") == 50
    now[0] += 51
    assert not c.is_cooling("b") and c.is_cooling("a")
    assert c.earliest_ready(["a", "b"]) == 0


def test_chain_warnings() -> None:
    p = ProviderConfig(provider="a", model="m", base_url="http://127.0.0.1:1/v1")
    assert "at least 3" in chain_warnings(ModelConfig(default="m", provider="a"), [p])[0]
    three = [p.model_copy(update={"provider": n}) for n in "abc"]
    assert chain_warnings(ModelConfig(default="m", provider="a"), three) == []
