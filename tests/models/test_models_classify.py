"""The classifier and cooldowns: pure, so every rule is checked without a network."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

import fleettest.models_fake as fakes
from fleetcore.models.classify import (
    Action,
    Failure,
    Kind,
    classify,
    rate_limit_reset_s,
    retry_after_s,
)
from fleetcore.models.config import ModelConfig, ProviderConfig, chain_warnings
from fleetcore.models.cooldown import Cooldowns

NOW = 1_000_000.0
SHORT, BAD_KEY, BILLING = 30, 3600, 21600


def decide(failure: Failure, attempt: int = 0):  # type: ignore[no-untyped-def]
    return classify(
        failure,
        attempt=attempt,
        short_cooldown_s=SHORT,
        bad_key_cooldown_s=BAD_KEY,
        billing_cooldown_s=BILLING,
        now_epoch=NOW,
    )


def recorded(b: fakes.Behaviour) -> Failure:
    """The failure the chain sees for a recorded fault: its status, body and headers."""
    return Failure("http", b.status, json.dumps(b.body).encode(), b.headers)


HTTP_DATE_10S = format_datetime(datetime.fromtimestamp(NOW + 10, UTC), usegmt=True)
A, F, N, R, C = Action.ABORT, Action.FAILOVER, Action.NEXT, Action.RETRY_SAME, Action.LARGER_CONTEXT

# The classifier table: every row of issue 15 and every documented error, each with the
# body and headers the provider sends (recorded in fleettest.models_fake).
# (fault, attempt, action, kind, cooldown, words)
TABLE = [
    # OpenAI
    (fakes.openai_insufficient_quota(), 0, F, Kind.BILLING, BILLING, "out of credit"),
    (fakes.openai_spend_limit_exceeded(), 0, F, Kind.BILLING, BILLING,
     "monthly spend limit reached"),
    (fakes.openai_rate_limit_exceeded("20"), 0, F, Kind.RATE_LIMITED, 20, "rate limited"),
    # no Retry-After: the exhausted bucket's x-ratelimit-reset-requests ("20s")
    (fakes.openai_rate_limit_exceeded(None), 0, F, Kind.RATE_LIMITED, 20, "rate limited"),
    # retry-after-ms wins over retry-after, as in both SDKs
    (fakes.openai_rate_limit_exceeded("20", "1500"), 0, F, Kind.RATE_LIMITED, 1.5,
     "rate limited"),
    (fakes.openai_invalid_api_key(), 0, F, Kind.BAD_KEY, BAD_KEY, "key rejected"),
    (fakes.openai_model_not_found(), 0, F, Kind.MISCONFIGURED, BAD_KEY, "not found"),
    (fakes.openai_context_length_exceeded(), 0, C, Kind.CONTEXT, 0, "context"),
    (fakes.openai_server_error(), 0, F, Kind.DOWN, SHORT, "down"),
    (fakes.openai_overloaded("45"), 0, F, Kind.DOWN, 45, "down"),  # Retry-After on a 503
    (fakes.openai_invalid_request(), 0, A, Kind.INVALID, 0, "request rejected"),
    # Anthropic
    (fakes.anthropic_authentication_error(), 0, F, Kind.BAD_KEY, BAD_KEY, "key rejected"),
    (fakes.anthropic_permission_error(), 0, F, Kind.BAD_KEY, BAD_KEY, "key not allowed"),
    (fakes.anthropic_not_found_error(), 0, F, Kind.MISCONFIGURED, BAD_KEY, "not found"),
    (fakes.anthropic_rate_limit_error("15"), 0, F, Kind.RATE_LIMITED, 15, "rate limited"),
    (fakes.anthropic_spend_limit_reached(), 0, F, Kind.BILLING, BILLING,
     "monthly spend limit reached"),
    (fakes.anthropic_usage_limits_reached(), 0, F, Kind.BILLING, BILLING,
     "monthly spend limit reached"),
    (fakes.anthropic_credit_balance_too_low(), 0, F, Kind.BILLING, BILLING, "out of credit"),
    (fakes.anthropic_billing_error(), 0, F, Kind.BILLING, BILLING, "billing problem"),
    # api_error and overloaded_error come with x-should-retry: true: once more at once,
    # then the next provider
    (fakes.anthropic_api_error(), 0, R, Kind.DOWN, 0, "down"),
    (fakes.anthropic_api_error(), 1, F, Kind.DOWN, SHORT, "down"),
    (fakes.anthropic_api_error(should_retry="false"), 0, N, Kind.DOWN, 0, "down"),
    (fakes.anthropic_overloaded_error(), 0, R, Kind.DOWN, 0, "overloaded"),
    (fakes.anthropic_overloaded_error(), 1, F, Kind.DOWN, SHORT, "overloaded"),
    (fakes.anthropic_overloaded_error("90"), 0, F, Kind.DOWN, 90, "overloaded"),
    (fakes.anthropic_overloaded_error(HTTP_DATE_10S), 0, F, Kind.DOWN, 10, "overloaded"),
    (fakes.anthropic_request_too_large(), 0, N, Kind.INVALID, 0, "request too large"),
    (fakes.anthropic_invalid_request(), 0, A, Kind.INVALID, 0, "request rejected"),
    (fakes.anthropic_prompt_too_long(), 0, C, Kind.CONTEXT, 0, "context"),
    # OpenRouter
    (fakes.openrouter_insufficient_credits(), 0, F, Kind.BILLING, BILLING, "out of credit"),
    (fakes.openrouter_insufficient_credits("openrouter_key_limit"), 0, F, Kind.BILLING,
     BILLING, "credit limit"),
    (fakes.openrouter_in_flight_budget("5"), 0, F, Kind.RATE_LIMITED, 5, "paced"),
    (fakes.openrouter_moderation(), 0, N, Kind.REFUSED, 0, "moderation"),
    (fakes.openrouter_timeout(), 0, F, Kind.TIMEOUT, SHORT, "timed out"),
    (fakes.openrouter_rate_limited("10"), 0, F, Kind.RATE_LIMITED, 10, "rate limited"),
    (fakes.openrouter_model_down(), 0, F, Kind.DOWN, SHORT, "down"),
    (fakes.openrouter_no_provider(), 0, F, Kind.DOWN, SHORT, "down"),
    (fakes.openrouter_wrapped_error(502), 0, F, Kind.DOWN, SHORT, "down"),
    (fakes.openrouter_wrapped_error(429), 0, F, Kind.RATE_LIMITED, SHORT, "rate limited"),
    (fakes.openrouter_finish_reason_error(), 0, F, Kind.DOWN, SHORT, "down"),
    # x-should-retry against the status
    (fakes.status(400, fakes.openai_invalid_request().body, **{"x-should-retry": "true"}),
     0, R, Kind.INVALID, 0, "request rejected"),
    (fakes.status(400, fakes.openai_invalid_request().body, **{"x-should-retry": "true"}),
     1, F, Kind.INVALID, SHORT, "request rejected"),
    (fakes.status(408, fakes.openrouter_timeout().body, **{"x-should-retry": "false"}),
     0, N, Kind.TIMEOUT, 0, "timed out"),
    # a header does not overrule a body that names the cause
    (fakes.status(429, fakes.openai_insufficient_quota().body, **{"x-should-retry": "true"}),
     0, F, Kind.BILLING, BILLING, "out of credit"),
    (fakes.status(403, fakes.openrouter_moderation().body, **{"x-should-retry": "true"}),
     0, N, Kind.REFUSED, 0, "moderation"),
    # Retry-After: 0 with x-should-retry: true is "now"
    (fakes.anthropic_overloaded_error("0"), 0, R, Kind.DOWN, 0, "overloaded"),
]  # fmt: skip


def test_the_table_covers_every_named_fault() -> None:
    assert {row[0].name for row in TABLE} >= set(fakes.FAULTS) - {""}


@pytest.mark.parametrize(
    ("fault", "attempt", "action", "kind", "cooldown", "words"),
    TABLE,
    ids=[f"{i:02d}-{r[0].name or r[0].status}-{r[1]}" for i, r in enumerate(TABLE)],
)
def test_classifier_table(fault, attempt, action, kind, cooldown, words) -> None:  # type: ignore[no-untyped-def]
    d = decide(recorded(fault), attempt)
    assert (d.action, d.kind) == (action, kind), d.reason
    assert d.cooldown_s == pytest.approx(cooldown, abs=1)
    assert words in d.words
    assert d.reason  # says what the provider said


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


def test_filtered_or_refused_answers_go_to_the_next_provider_only() -> None:
    d = decide(Failure("refused", 200, detail="content filtered (finish_reason=content_filter)"))
    assert (d.action, d.kind, d.cooldown_s) == (Action.NEXT, Kind.REFUSED, 0)


def test_rate_limit_reset_headers() -> None:
    openai = fakes.openai_headers(exhausted="tokens", reset="6m0s")
    assert rate_limit_reset_s(openai, NOW) == 360
    assert rate_limit_reset_s(fakes.openai_headers(), NOW) is None  # nothing exhausted
    anthropic = fakes.anthropic_headers(exhausted="input-tokens", reset_s=42)
    now = datetime.now(UTC).timestamp()
    assert rate_limit_reset_s(anthropic, now) == pytest.approx(42, abs=2)
    assert retry_after_s({"Retry-After": "soon"}, NOW) is None
    assert retry_after_s({"retry-after-ms": "nan", "retry-after": "3"}, NOW) == 3


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
