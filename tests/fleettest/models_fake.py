"""Fake model providers on loopback that speak the real wire formats and misbehave on cue.

Used by the tests, `bench/failover.py`, `bench/burn.py` and `fleet demo`. Each server
records the requests it received, so a test can prove a cooling provider got none.

Every answer, good or bad, is shaped like the real provider's: the bodies and headers below
are taken from the providers' API documents and the official SDKs' types (`openai` 3.57,
`anthropic` 2.14: `types/chat/chat_completion.py`, `types/message.py`,
`types/shared/error_response.py`, `_exceptions.py`, `_error_classes.py`), or from error
bodies the providers were seen to send (quoted in public bug reports; noted where so).
`tests/models/test_models_sdk.py` runs the official SDKs against these fakes: success bodies
pass their strict validation and each fault raises the SDK's own exception class.

- OpenAI: `{"error": {"message", "type", "param", "code"}}`; headers `x-request-id`,
  `openai-version`, `openai-processing-ms`, `x-ratelimit-{limit,remaining,reset}-{requests,
  tokens}` (resets as durations, "6m0s"), `retry-after` / `retry-after-ms` on a 429.
- Anthropic: `{"type": "error", "error": {"type", "message"[, "details": {"error_code"}]},
  "request_id"}`; headers `request-id` (the body's `request_id`), `anthropic-organization-id`,
  `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`
  (resets as RFC 3339 times), `retry-after` on a 429, `x-should-retry` on 5xx and 529.
- OpenRouter (OpenAI wire format): `{"error": {"code": <int>, "message", "metadata"}}` with
  the same HTTP status, or with HTTP 200 once the model had started (the whole body, or
  `choices[0].error` with `finish_reason: "error"`).

A FakeProvider's `kind` ("openai" or "anthropic") is its wire format; `status(code)` without a
body answers with that provider's own body for the status. The named faults
(`openai_insufficient_quota()`, `anthropic_overloaded_error()`, `openrouter_moderation()`,
...; all listed in `FAULTS`) send one documented case each, body and headers.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

Reply = str | Callable[[dict[str, Any]], str]


@dataclass
class Behaviour:
    # ok | status | hang | close | bad_json | empty | truncated | context | wrapped
    mode: str = "ok"
    text: Reply = "ok"
    status: int = 200
    # None with mode "status": the fake's provider's own error body for `status`.
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # The named fault this is (`FAULTS`), for test ids and messages.
    name: str = ""
    # Which provider's documents the fault comes from: "openai", "anthropic", "openrouter".
    provider: str = ""


def ok(text: Reply = "ok") -> Behaviour:
    return Behaviour("ok", text=text)


def status(code: int, body: dict[str, Any] | None = None, **headers: str) -> Behaviour:
    """Answer `code`; without `body`, with the provider's own error body for that status."""
    return Behaviour("status", status=code, body=body, headers=_lower(headers))


def rate_limited(retry_after: str) -> Behaviour:
    """A plain 429 with `Retry-After` (seconds or an HTTP date), in the fake's own format."""
    return status(429, None, **{"retry-after": retry_after})


def hang(text: Reply = "too late") -> Behaviour:
    """Hold every request until `release()` (or the server closes), then answer `text`:
    a wolf frozen mid-call that wakes up with a good answer must still not post it."""
    return Behaviour("hang", text=text)


def close() -> Behaviour:
    """Drop the connection without an answer."""
    return Behaviour("close")


def bad_json() -> Behaviour:
    return Behaviour("bad_json")


def empty() -> Behaviour:
    return Behaviour("empty")


def truncated() -> Behaviour:
    return Behaviour("truncated")


def context_too_long() -> Behaviour:
    """400: the prompt is longer than the model's context, in the fake's own format."""
    return Behaviour("context")


def wrapped_error(code: int, message: str = "upstream error") -> Behaviour:
    """OpenRouter: a provider's error wrapped in an HTTP 200 body."""
    return Behaviour("wrapped", status=code, text=message, provider="openrouter")


def refused_url() -> str:
    """A loopback URL where nothing listens: connection refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


# -- bodies and headers ------------------------------------------------------------------


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): str(v) for k, v in headers.items()}


def _rfc3339(seconds_from_now: float) -> str:
    when = datetime.now(UTC) + timedelta(seconds=seconds_from_now)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


_B62 = string.ascii_letters + string.digits


def openai_request_id() -> str:
    return "req_" + secrets.token_hex(16)


def anthropic_request_id() -> str:
    return "req_011C" + "".join(secrets.choice(_B62) for _ in range(20))


def openai_error(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """OpenAI's error body (`openai.types.shared.ErrorObject` under "error")."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def anthropic_error(type_: str, message: str, error_code: str | None = None) -> dict[str, Any]:
    """Anthropic's error body (`anthropic.types.shared.ErrorResponse`); `request_id` is
    filled in per request with the `request-id` header's value."""
    error: dict[str, Any] = {"type": type_, "message": message}
    if error_code is not None:
        error["details"] = {"error_code": error_code}
    return {"type": "error", "error": error, "request_id": None}


def openrouter_error(
    code: int, message: str, metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    """OpenRouter's `ErrorResponse`: `{"error": {"code", "message", "metadata"?}}`."""
    error: dict[str, Any] = {"code": code, "message": message}
    if metadata is not None:
        error["metadata"] = metadata
    return {"error": error}


def openai_headers(*, exhausted: str | None = None, reset: str = "20s") -> dict[str, str]:
    """OpenAI's rate-limit headers; `exhausted` ("requests"/"tokens") is the bucket at 0."""
    h = {
        "openai-version": "2020-10-01",
        "openai-organization": "user-fleettest",
        "openai-processing-ms": "212",
        "x-ratelimit-limit-requests": "10000",
        "x-ratelimit-limit-tokens": "200000",
        "x-ratelimit-remaining-requests": "9999",
        "x-ratelimit-remaining-tokens": "199942",
        "x-ratelimit-reset-requests": "8.64s",
        "x-ratelimit-reset-tokens": "17ms",
    }
    if exhausted is not None:
        h[f"x-ratelimit-remaining-{exhausted}"] = "0"
        h[f"x-ratelimit-reset-{exhausted}"] = reset
    return h


def anthropic_headers(*, exhausted: str | None = None, reset_s: float = 20) -> dict[str, str]:
    """Anthropic's rate-limit headers; `exhausted` ("requests", "tokens", "input-tokens",
    "output-tokens") is the bucket at 0, refilling `reset_s` from now."""
    h = {"anthropic-organization-id": "6d1b7f0e-3c39-4a8e-9f5b-2f7d0a1c9e44"}
    for bucket, limit in (
        ("requests", 4000),
        ("tokens", 2_000_000),
        ("input-tokens", 2_000_000),
        ("output-tokens", 400_000),
    ):
        h[f"anthropic-ratelimit-{bucket}-limit"] = str(limit)
        h[f"anthropic-ratelimit-{bucket}-remaining"] = str(limit - 1)
        h[f"anthropic-ratelimit-{bucket}-reset"] = _rfc3339(1)
    if exhausted is not None:
        h[f"anthropic-ratelimit-{exhausted}-remaining"] = "0"
        h[f"anthropic-ratelimit-{exhausted}-reset"] = _rfc3339(reset_s)
    return h


def default_error(kind: str, code: int) -> tuple[dict[str, Any], dict[str, str]]:
    """The provider's own body (and extra headers) for an HTTP status, for `status(code)`."""
    if kind == "anthropic":
        types = {
            400: ("invalid_request_error", "messages: at least one message is required"),
            401: ("authentication_error", "invalid x-api-key"),
            402: ("billing_error", "There is an issue with your account's billing."),
            403: (
                "permission_error",
                "Your API key does not have permission to use the specified resource.",
            ),
            404: ("not_found_error", "Not found"),
            408: ("timeout_error", "Request timed out"),
            409: ("conflict_error", "Conflict"),
            413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
            429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
            500: ("api_error", "Internal server error"),
            504: ("timeout_error", "Request timed out"),
            529: ("overloaded_error", "Overloaded"),
        }
        type_, message = types.get(code, ("api_error", "Internal server error"))
        extra = {"x-should-retry": "true"} if code >= 500 else {}
        if code == 429:
            extra = anthropic_headers(exhausted="requests")
        return anthropic_error(type_, message), extra
    bodies = {
        400: openai_error("Invalid request", "invalid_request_error"),
        401: _OPENAI_INVALID_KEY,
        403: openai_error(
            "Country, region, or territory not supported",
            "request_forbidden",
            "unsupported_country_region_territory",
        ),
        404: openai_error(
            "The model `fake-model` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
        ),
        429: _OPENAI_RATE_LIMIT,
    }
    body = bodies.get(
        code,
        openai_error(
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
        ),
    )
    extra = openai_headers(exhausted="requests") if code == 429 else {}
    return body, extra


_OPENAI_INVALID_KEY = openai_error(
    "Incorrect API key provided: sk-brok************pose. You can find your API key at "
    "https://platform.openai.com/account/api-keys.",
    "invalid_request_error",
    "invalid_api_key",
)
_OPENAI_RATE_LIMIT = openai_error(
    "Rate limit reached for gpt-4o-mini in organization org-fleettest on requests per min "
    "(RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit "
    "https://platform.openai.com/account/rate-limits to learn more.",
    "requests",
    "rate_limit_exceeded",
)


def _fault(name: str, provider: str, code: int, body: dict[str, Any], **headers: str) -> Behaviour:
    return Behaviour(
        "status", status=code, body=body, headers=_lower(headers), name=name, provider=provider
    )


# -- named faults: OpenAI ----------------------------------------------------------------


def openai_insufficient_quota() -> Behaviour:
    """429 that no wait fixes: out of credit or over the plan (type and code alike)."""
    body = openai_error(
        "You exceeded your current quota, please check your plan and billing details. For "
        "more information on this error, read the docs: "
        "https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "insufficient_quota",
        "insufficient_quota",
    )
    return _fault("openai_insufficient_quota", "openai", 429, body, **openai_headers())


def openai_spend_limit_exceeded() -> Behaviour:
    """429 `organization_spend_limit_exceeded` (the spend-limits guide names the code; the
    message is ours)."""
    body = openai_error(
        "You have reached your organization's monthly spend limit.",
        "insufficient_quota",
        "organization_spend_limit_exceeded",
    )
    return _fault("openai_spend_limit_exceeded", "openai", 429, body, **openai_headers())


def openai_rate_limit_exceeded(
    retry_after: str | None = "20", retry_after_ms: str | None = None
) -> Behaviour:
    """429 `rate_limit_exceeded`: the requests bucket is empty and refills in 20 s."""
    headers = openai_headers(exhausted="requests", reset="20s")
    if retry_after is not None:
        headers["retry-after"] = retry_after
    if retry_after_ms is not None:
        headers["retry-after-ms"] = retry_after_ms
    return _fault("openai_rate_limit_exceeded", "openai", 429, _OPENAI_RATE_LIMIT, **headers)


def openai_invalid_api_key() -> Behaviour:
    return _fault("openai_invalid_api_key", "openai", 401, _OPENAI_INVALID_KEY)


def openai_model_not_found(model: str = "gpt-9-turbo") -> Behaviour:
    body = openai_error(
        f"The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    )
    return _fault("openai_model_not_found", "openai", 404, body)


def openai_context_length_exceeded() -> Behaviour:
    body = openai_error(
        "This model's maximum context length is 128000 tokens. However, your messages "
        "resulted in 130412 tokens. Please reduce the length of the messages.",
        "invalid_request_error",
        "context_length_exceeded",
        "messages",
    )
    return _fault("openai_context_length_exceeded", "openai", 400, body)


def openai_server_error() -> Behaviour:
    body = openai_error(
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
    )
    return _fault("openai_server_error", "openai", 500, body)


def openai_overloaded(retry_after: str | None = None) -> Behaviour:
    body = openai_error(
        "The engine is currently overloaded, please try again later.", "server_error"
    )
    headers = {} if retry_after is None else {"retry-after": retry_after}
    return _fault("openai_overloaded", "openai", 503, body, **headers)


def openai_invalid_request() -> Behaviour:
    body = openai_error(
        "Invalid type for 'messages[1].content': expected one of a string or array of "
        "objects, but got an object instead.",
        "invalid_request_error",
        "invalid_type",
        "messages[1].content",
    )
    return _fault("openai_invalid_request", "openai", 400, body)


# -- named faults: Anthropic -------------------------------------------------------------


def anthropic_authentication_error() -> Behaviour:
    body = anthropic_error("authentication_error", "invalid x-api-key")
    return _fault(
        "anthropic_authentication_error", "anthropic", 401, body, **{"x-should-retry": "false"}
    )


def anthropic_permission_error() -> Behaviour:
    body = anthropic_error(
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    )
    return _fault(
        "anthropic_permission_error", "anthropic", 403, body, **{"x-should-retry": "false"}
    )


def anthropic_not_found_error(model: str = "claude-9-opus") -> Behaviour:
    body = anthropic_error("not_found_error", f"model: {model}")
    return _fault(
        "anthropic_not_found_error", "anthropic", 404, body, **{"x-should-retry": "false"}
    )


def anthropic_rate_limit_error(retry_after: str = "15") -> Behaviour:
    body = anthropic_error(
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of 50 requests per "
        "minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. You can "
        "see the response headers for current usage. Please reduce the prompt length or the "
        "maximum tokens requested, or try again later.",
    )
    headers = anthropic_headers(exhausted="requests", reset_s=float(retry_after))
    return _fault(
        "anthropic_rate_limit_error",
        "anthropic",
        429,
        body,
        **headers,
        **{"retry-after": retry_after},
    )


def anthropic_spend_limit_reached() -> Behaviour:
    """429 `enforced_spend_limit_reached`: the tier's monthly cap; no `retry-after`."""
    body = anthropic_error(
        "rate_limit_error",
        "Your organization has crossed the monthly API usage threshold of its API tier. "
        "Access resumes at the start of next month, or move to a higher tier.",
        "enforced_spend_limit_reached",
    )
    return _fault("anthropic_spend_limit_reached", "anthropic", 429, body, **anthropic_headers())


def anthropic_usage_limits_reached() -> Behaviour:
    """400: a spend limit the organization set (message as Anthropic sends it)."""
    body = anthropic_error(
        "invalid_request_error",
        "You have reached your specified API usage limits. You will regain access on "
        "2026-04-01 at 00:00 UTC.",
    )
    return _fault("anthropic_usage_limits_reached", "anthropic", 400, body)


def anthropic_credit_balance_too_low() -> Behaviour:
    """400 invalid_request_error, though the cause is billing (message as Anthropic sends it)."""
    body = anthropic_error(
        "invalid_request_error",
        "Your credit balance is too low to access the Anthropic API. Please go to Plans & "
        "Billing to upgrade or purchase credits.",
    )
    return _fault("anthropic_credit_balance_too_low", "anthropic", 400, body)


def anthropic_billing_error() -> Behaviour:
    """402 `billing_error` (`anthropic.PaymentRequiredError`)."""
    body = anthropic_error(
        "billing_error", "There is an issue with your account's billing or payment information."
    )
    return _fault("anthropic_billing_error", "anthropic", 402, body, **{"x-should-retry": "false"})


def anthropic_api_error(should_retry: str | None = "true") -> Behaviour:
    body = anthropic_error("api_error", "Internal server error")
    headers = {} if should_retry is None else {"x-should-retry": should_retry}
    return _fault("anthropic_api_error", "anthropic", 500, body, **headers)


def anthropic_overloaded_error(retry_after: str | None = None) -> Behaviour:
    """529 `overloaded_error` (`anthropic.OverloadedError`), with `x-should-retry: true`."""
    body = anthropic_error("overloaded_error", "Overloaded")
    headers = {"x-should-retry": "true"}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    return _fault("anthropic_overloaded_error", "anthropic", 529, body, **headers)


def anthropic_request_too_large() -> Behaviour:
    """413 `request_too_large` (sent by Anthropic's edge before the API sees the request)."""
    body = anthropic_error(
        "request_too_large", "Request exceeds the maximum allowed number of bytes."
    )
    return _fault("anthropic_request_too_large", "anthropic", 413, body)


def anthropic_invalid_request() -> Behaviour:
    body = anthropic_error("invalid_request_error", "max_tokens: Field required")
    return _fault(
        "anthropic_invalid_request", "anthropic", 400, body, **{"x-should-retry": "false"}
    )


def anthropic_prompt_too_long() -> Behaviour:
    body = anthropic_error(
        "invalid_request_error", "prompt is too long: 210012 tokens > 200000 maximum"
    )
    return _fault("anthropic_prompt_too_long", "anthropic", 400, body)


# -- named faults: OpenRouter (OpenAI wire format) ---------------------------------------


def openrouter_insufficient_credits(limit_source: str = "openrouter_credits") -> Behaviour:
    body = openrouter_error(
        402,
        "Insufficient credits. Add more using https://openrouter.ai/settings/credits",
        {"limit_source": limit_source},
    )
    return _fault("openrouter_insufficient_credits", "openrouter", 402, body)


def openrouter_in_flight_budget(retry_after: str = "5") -> Behaviour:
    """402 with `Retry-After`: the in-flight spending budget, a wait, not an empty account."""
    body = openrouter_error(
        402,
        "Too many expensive requests in flight for this key; retry shortly.",
        {"limit_source": "openrouter_in_flight_budget"},
    )
    return _fault(
        "openrouter_in_flight_budget", "openrouter", 402, body, **{"retry-after": retry_after}
    )


def openrouter_moderation() -> Behaviour:
    """403: the model requires moderation and this input was flagged (ModerationErrorMetadata)."""
    body = openrouter_error(
        403,
        'openai/gpt-4o requires moderation on OpenAI. Your input was flagged for "harassment". '
        "No credits were charged.",
        {
            "reasons": ["harassment"],
            "flagged_input": "you are all useless and I will...",
            "provider_name": "OpenAI",
            "model_slug": "openai/gpt-4o",
        },
    )
    return _fault("openrouter_moderation", "openrouter", 403, body)


def openrouter_timeout() -> Behaviour:
    body = openrouter_error(408, "Request timed out")
    return _fault("openrouter_timeout", "openrouter", 408, body)


def openrouter_rate_limited(retry_after: str = "10") -> Behaviour:
    body = openrouter_error(
        429,
        "Rate limit exceeded: free-models-per-min. ",
        {
            "headers": {
                "X-RateLimit-Limit": "20",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(time.time() * 1000) + 10_000),
            }
        },
    )
    return _fault(
        "openrouter_rate_limited", "openrouter", 429, body, **{"retry-after": retry_after}
    )


def openrouter_model_down() -> Behaviour:
    body = openrouter_error(
        502,
        "Provider returned error",
        {"provider_name": "Together", "raw": "upstream connect error or disconnect/reset"},
    )
    return _fault("openrouter_model_down", "openrouter", 502, body)


def openrouter_no_provider() -> Behaviour:
    body = openrouter_error(503, "No allowed providers are available for the selected model.")
    return _fault("openrouter_no_provider", "openrouter", 503, body)


def openrouter_wrapped_error(code: int = 502) -> Behaviour:
    """HTTP 200 whose whole body is the error: the model had started when it failed."""
    body = openrouter_error(
        code,
        "Provider returned error",
        {"provider_name": "DeepInfra", "raw": "model overloaded, try again"},
    )
    return _fault("openrouter_wrapped_error", "openrouter", 200, body)


def openrouter_finish_reason_error(code: int = 502) -> Behaviour:
    """HTTP 200, a partial answer, `finish_reason: "error"` and `choices[0].error`."""
    body = {
        "id": "gen-1751234567-" + secrets.token_hex(10),
        "provider": "DeepInfra",
        "model": "meta-llama/llama-3.3-70b-instruct",
        "object": "chat.completion",
        "created": int(time.time()),
        "choices": [
            {
                "logprobs": None,
                "finish_reason": "error",
                "native_finish_reason": "error",
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": 'Evidence:\n- "the login page',
                    "refusal": None,
                },
                "error": {
                    "code": code,
                    "message": "Provider disconnected unexpectedly",
                    "metadata": {"provider_name": "DeepInfra"},
                },
            }
        ],
        "usage": {"prompt_tokens": 812, "completion_tokens": 9, "total_tokens": 821},
    }
    return _fault("openrouter_finish_reason_error", "openrouter", 200, body)


FAULTS: dict[str, Callable[[], Behaviour]] = {
    f.__name__: f
    for f in (
        openai_insufficient_quota,
        openai_spend_limit_exceeded,
        openai_rate_limit_exceeded,
        openai_invalid_api_key,
        openai_model_not_found,
        openai_context_length_exceeded,
        openai_server_error,
        openai_overloaded,
        openai_invalid_request,
        anthropic_authentication_error,
        anthropic_permission_error,
        anthropic_not_found_error,
        anthropic_rate_limit_error,
        anthropic_spend_limit_reached,
        anthropic_usage_limits_reached,
        anthropic_credit_balance_too_low,
        anthropic_billing_error,
        anthropic_api_error,
        anthropic_overloaded_error,
        anthropic_request_too_large,
        anthropic_invalid_request,
        anthropic_prompt_too_long,
        openrouter_insufficient_credits,
        openrouter_in_flight_budget,
        openrouter_moderation,
        openrouter_timeout,
        openrouter_rate_limited,
        openrouter_model_down,
        openrouter_no_provider,
        openrouter_wrapped_error,
        openrouter_finish_reason_error,
    )
}


def fault(name: str) -> Behaviour:
    """A named fault by its name in `FAULTS`."""
    return FAULTS[name]()


def wire_of(behaviour: Behaviour) -> str:
    """The wire format ("openai" or "anthropic") a named fault belongs on."""
    return "anthropic" if behaviour.provider == "anthropic" else "openai"


# -- the server --------------------------------------------------------------------------


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


class FakeProvider:
    """One fake provider on 127.0.0.1, on a port the OS picks (`port`, `base_url`, `origin`).

    With `api_key` set, a request with another key gets the provider's real 401 first,
    whatever the behaviour, as a real provider checks keys before anything else.
    """

    def __init__(
        self, kind: str = "openai", behaviour: Behaviour | None = None, api_key: str | None = None
    ) -> None:
        self.kind = kind
        self.behaviour = behaviour or ok()
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        # (status, headers) of every answer sent, in order.
        self.answers: list[tuple[int, dict[str, str]]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._release = asyncio.Event()
        self._arrival = asyncio.Condition()

    def behave(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour

    async def wait_requests(self, count: int = 1, timeout: float = 30.0) -> None:
        """Wait until `count` requests have arrived (a held one counts on arrival)."""

        async def arrived() -> None:
            async with self._arrival:
                await self._arrival.wait_for(lambda: len(self.requests) >= count)

        await asyncio.wait_for(arrived(), timeout)

    def release(self) -> None:
        """Let every request held by `hang()` go on (they then answer as `ok`)."""
        self._release.set()

    @property
    def origin(self) -> str:
        """`http://127.0.0.1:PORT`: the base URL the `anthropic` SDK wants."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT/v1`: the base URL the `openai` SDK and the chain want."""
        return f"{self.origin}/v1"

    async def __aenter__(self) -> FakeProvider:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_post("/v1/messages", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- answers -------------------------------------------------------------------------

    def _answer(self, request: dict[str, Any], text: str, stop: str | None = None) -> dict:
        model = str(request.get("model") or "fake-model")
        prompt = json.dumps(request.get("messages", []))
        used_in, used_out = _tokens(prompt), _tokens(text)
        if self.kind == "anthropic":
            return {
                "id": "msg_01" + "".join(secrets.choice(_B62) for _ in range(22)),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": text, "citations": None}],
                "stop_reason": stop or "end_turn",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": used_in,
                    "output_tokens": used_out,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "server_tool_use": None,
                    "service_tier": "standard",
                },
            }
        return {
            "id": "chatcmpl-" + "".join(secrets.choice(_B62) for _ in range(29)),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": text,
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": stop or "stop",
                }
            ],
            "usage": {
                "prompt_tokens": used_in,
                "completion_tokens": used_out,
                "total_tokens": used_in + used_out,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_" + secrets.token_hex(5),
        }

    def _base_headers(self, provider: str = "") -> tuple[str, dict[str, str]]:
        if provider == "openrouter":  # OpenRouter names the generation, not the request
            gid = "gen-" + str(int(time.time())) + "-" + secrets.token_hex(10)
            return gid, {"x-generation-id": gid}
        if self.kind == "anthropic":
            rid = anthropic_request_id()
            return rid, {"request-id": rid, **anthropic_headers()}
        rid = openai_request_id()
        return rid, {"x-request-id": rid, **openai_headers()}

    def _send(
        self, code: int, body: dict[str, Any], rid: str, headers: dict[str, str]
    ) -> web.Response:
        if body.get("type") == "error" and "request_id" in body:
            body = {**body, "request_id": rid}
        self.answers.append((code, headers))
        return web.json_response(body, status=code, headers=headers)

    def _key_of(self, request: web.Request) -> str | None:
        if self.kind == "anthropic":
            return request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        return auth[len("Bearer ") :] if auth.startswith("Bearer ") else None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        async with self._arrival:
            self._arrival.notify_all()
        rid, headers = self._base_headers(self.behaviour.provider)
        if self.api_key is not None and self._key_of(request) != self.api_key:
            err, extra = default_error(self.kind, 401)
            return self._send(401, err, rid, {**headers, **extra})
        b = self.behaviour
        if b.mode == "ok":
            text = b.text(body) if callable(b.text) else b.text
            return self._send(200, self._answer(body, text), rid, headers)
        if b.mode == "status":
            if b.body is None:
                err, extra = default_error(self.kind, b.status)
            else:
                err, extra = b.body, {}
            return self._send(b.status, err, rid, {**headers, **extra, **b.headers})
        if b.mode == "hang":
            await self._release.wait()
            text = b.text(body) if callable(b.text) else b.text
            return self._send(200, self._answer(body, text), rid, headers)
        if b.mode == "close":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if b.mode == "bad_json":
            return web.Response(
                text='{"choices": [', content_type="application/json", headers=headers
            )
        if b.mode == "empty":
            return self._send(200, self._answer(body, ""), rid, headers)
        if b.mode == "truncated":
            stop = "max_tokens" if self.kind == "anthropic" else "length"
            return self._send(200, self._answer(body, "half an ans", stop), rid, headers)
        if b.mode == "context":
            too_long = anthropic_prompt_too_long if self.kind == "anthropic" else None
            fault_ = (too_long or openai_context_length_exceeded)()
            assert fault_.body is not None
            return self._send(400, fault_.body, rid, headers)
        if b.mode == "wrapped":
            text = b.text if isinstance(b.text, str) else "error"
            err = openrouter_error(b.status, text, {"provider_name": "Upstream"})
            return self._send(200, err, rid, headers)
        raise AssertionError(f"unknown behaviour {b.mode}")


def triage_reply(body: dict[str, Any]) -> str:
    """A rubric-valid triage that quotes the issue's title, as a good model would."""
    prompt = str(body.get("messages", [{}])[-1].get("content", ""))
    for message in body.get("messages", []):
        if "Title: " in str(message.get("content", "")):
            prompt = str(message["content"])
            break
    title = next(
        (line[len("Title: ") :] for line in prompt.splitlines() if line.startswith("Title: ")),
        "",
    )
    return (
        "Evidence:\n"
        f'- "{title}" (from the title)\n'
        "Recommended next action: Reproduce it on the current main branch and add a test.\n"
        "Confidence: medium\n"
    )
