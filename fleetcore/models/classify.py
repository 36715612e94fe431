"""The one error classifier every provider goes through.

It reads the HTTP status, the headers and the error body, or the transport exception, and
decides: retry the same provider once, fail over (with a cooldown of some length), fail over
for this request only, fail over to a provider with a larger context, or abort. A new
provider therefore needs a wire format, never new failover code.

The bodies it reads are the providers' own (see `tests/fleettest/models_fake.py`, which
sends them, and `tests/models/test_models_sdk.py`, where the official SDKs check them):

- OpenAI: `{"error": {"message", "type", "param", "code"}}`; the cause is in `code`
  (`insufficient_quota` and the spend-limit codes arrive as a 429, like a rate limit).
- Anthropic: `{"type": "error", "error": {"type", "message", "details": {"error_code"}},
  "request_id"}`; `error.type` is the broad class, `details.error_code` the cause.
- OpenRouter: `{"error": {"code": <int>, "message", "metadata"}}`, with the HTTP status, or
  inside an HTTP 200 (as the whole body, or as `choices[0].error` with
  `finish_reason: "error"`) once the model had started.

Decision table (first match wins; "wait" is `retry-after-ms`, else `Retry-After` as seconds
or an HTTP date, capped at the billing cooldown):

- billing -> failover, kind billing, the billing cooldown (hours): OpenAI `insufficient_quota`,
  `credit_balance_exhausted`, `*_spend_limit_exceeded`, `organization_usage_limit_exceeded`;
  Anthropic `billing_error`, 400 "credit balance is too low", 400 "specified API usage
  limits", 429 `enforced_spend_limit_reached` / `contract_spend_limit_reached`, 402
  `linked_organization_*`; any 402 without `Retry-After` (OpenRouter insufficient credits)
- 402 with `Retry-After` (OpenRouter's in-flight budget) -> failover, rate_limited, wait
- 401, `authentication_error`, `invalid_api_key` -> failover, bad_key, the bad-key cooldown
- 403 with moderation metadata (OpenRouter `reasons` / `flagged_input`) -> next provider for
  this request only, request_refused, no cooldown
- 403, `permission_error` -> failover, bad_key, the bad-key cooldown
- 408, `timeout_error` -> failover, timeout, wait or short
- 429, `rate_limit_error` -> failover, rate_limited, wait, else the reset time of the
  exhausted bucket (`x-ratelimit-*`, `anthropic-ratelimit-*`), else short
- 5xx, 529, `api_error`, `overloaded_error` -> failover, down, wait or short
- context too long (`context_length_exceeded`, "prompt is too long", ...) -> larger context
- 404, `not_found_error`, `model_not_found` -> failover, misconfigured, the bad-key cooldown
- 413, `request_too_large` -> next provider for this request only, invalid_request
- other 400, 422 -> abort (no provider can answer an invalid request), invalid_request
- an error inside a 200 without a numeric code (mid-generation) -> failover, down, short
- content filtered or refused (`finish_reason: content_filter`, `stop_reason: refusal`) ->
  next provider for this request only, request_refused
- an answer we cannot use (bad JSON, empty, truncated) -> failover, bad_response, no cooldown
- anything else -> failover, bad_response, short

`x-should-retry` (sent by the APIs, obeyed by both official SDKs) then has the last word
unless the body names the cause (billing, key, model, context, a moderation flag):
`true` makes the failure transient (never abort or request-only; with no `Retry-After`,
the same provider is asked once more at once); `false` on a 5xx or 408 makes it specific
to this request (the next provider is asked, this one keeps serving others).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

import httpx


class Action(StrEnum):
    RETRY_SAME = "retry_same"
    FAILOVER = "failover"
    # This request only: ask the next provider; this one stays usable for other requests.
    NEXT = "next_provider"
    LARGER_CONTEXT = "larger_context"
    ABORT = "abort"


class Kind(StrEnum):
    BAD_KEY = "bad_key"
    BILLING = "billing"
    RATE_LIMITED = "rate_limited"
    DOWN = "down"
    TIMEOUT = "timeout"
    BAD_RESPONSE = "bad_response"
    CONTEXT = "context_length"
    MISCONFIGURED = "misconfigured"
    INVALID = "invalid_request"
    REFUSED = "request_refused"


@dataclass(frozen=True)
class Failure:
    """What went wrong on one request; `stage` says how far it got."""

    # "connect" | "first_byte" | "total" | "reset" | "http" | "body" | "refused"
    stage: str
    status: int | None = None
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    exc: BaseException | None = None
    detail: str = ""


@dataclass(frozen=True)
class Decision:
    action: Action
    kind: Kind
    cooldown_s: float
    reason: str
    # What a person reads in `!status` ("out of credit", "monthly spend limit reached").
    words: str = ""
    # The HTTP status the provider answered, if it answered: a bare number, safe to show in
    # a room, where `reason` (which may quote the provider's body) is not.
    status: int | None = None


@dataclass(frozen=True)
class ErrorInfo:
    """The parts of an error body the classifier branches on, whatever the provider."""

    type: str = ""  # OpenAI error.type, Anthropic error.type
    code: str = ""  # OpenAI error.code, Anthropic error.details.error_code
    status: int | None = None  # OpenRouter's numeric error.code
    message: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)


CONTEXT_MARKERS = (
    "context_length_exceeded",
    "maximum context length",
    "context length",
    "context window",
    "prompt is too long",
    "too many tokens",
    "reduce the length",
)

# OpenAI: 429s whose `code` says a person must act (the `type` may be insufficient_quota).
OPENAI_BILLING = {
    "insufficient_quota": "out of credit (quota exhausted)",
    "credit_balance_exhausted": "out of credit",
    "organization_spend_limit_exceeded": "monthly spend limit reached",
    "project_spend_limit_exceeded": "monthly spend limit reached (project)",
    "organization_usage_limit_exceeded": "monthly usage limit reached",
}
# Anthropic: `error.details.error_code` of billing causes (SDK `_error_classes.py`).
ANTHROPIC_BILLING = {
    "enforced_spend_limit_reached": "monthly spend limit reached",
    "contract_spend_limit_reached": "contract spend limit reached",
    "linked_organization_spend_limit_reached": "linked organization's spend limit reached",
    "linked_organization_billing_unavailable": "billing problem (linked organization)",
}
# Anthropic sends these as a plain 400 invalid_request_error: only the message tells.
BILLING_MESSAGES = (
    ("credit balance is too low", "out of credit"),
    ("specified workspace api usage limits", "workspace spend limit reached"),
    ("specified api usage limits", "monthly spend limit reached"),
)
# OpenRouter 402: `error.metadata.limit_source`.
OPENROUTER_LIMITS = {
    "openrouter_credits": "out of credit",
    "openrouter_key_limit": "the key's credit limit reached",
}
# What a person does about it, for `!status`.
BILLING_HINTS = {
    "out of credit": "add credit",
    "spend limit": "raise the spend limit or wait for the new month",
    "usage limit": "ask the provider for a higher limit",
    "credit limit": "raise the key's credit limit",
    "billing problem": "check the account's billing",
}


def billing_hint(words: str) -> str:
    for marker, hint in BILLING_HINTS.items():
        if marker in words:
            return hint
    return "check the account's billing"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for k, v in headers.items():
        if k.lower() == name:
            return v
    return None


def retry_after_s(headers: Mapping[str, str], now_epoch: float) -> float | None:
    """As both SDKs read it: `retry-after-ms`, else `Retry-After` as seconds or an HTTP date."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = _header(headers, name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            continue
        if math.isfinite(seconds):
            return max(seconds, 0.0)
    value = _header(headers, "retry-after")
    if value is None:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(when.timestamp() - now_epoch, 0.0)


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def _go_duration_s(value: str) -> float | None:
    """OpenAI's `x-ratelimit-reset-*`: "1s", "6m0s", "20ms"."""
    parts = _GO_DURATION.findall(value.strip())
    if not parts or "".join(n + u for n, u in parts) != value.strip():
        return None
    return sum(float(n) * _GO_UNITS[u] for n, u in parts)


def rate_limit_reset_s(headers: Mapping[str, str], now_epoch: float) -> float | None:
    """When the exhausted rate-limit bucket refills, from the providers' rate-limit headers.

    OpenAI: `x-ratelimit-remaining-{requests,tokens}` and `x-ratelimit-reset-*` (durations).
    Anthropic: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-remaining`
    and `-reset` (RFC 3339 times).
    """
    waits = []
    for bucket in ("requests", "tokens"):
        if _header(headers, f"x-ratelimit-remaining-{bucket}") == "0":
            reset = _header(headers, f"x-ratelimit-reset-{bucket}")
            seconds = _go_duration_s(reset) if reset else None
            if seconds is not None:
                waits.append(seconds)
    for bucket in ("requests", "tokens", "input-tokens", "output-tokens"):
        if _header(headers, f"anthropic-ratelimit-{bucket}-remaining") == "0":
            reset = _header(headers, f"anthropic-ratelimit-{bucket}-reset")
            try:
                when = datetime.fromisoformat(reset.replace("Z", "+00:00")) if reset else None
            except ValueError:
                when = None
            if when is not None and when.tzinfo is not None:
                waits.append(max(when.timestamp() - now_epoch, 0.0))
    return max(waits) if waits else None


def error_info(body: bytes) -> ErrorInfo:
    """The error in a body of any of the known shapes (see the module docstring)."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return ErrorInfo(message=body[:200].decode("utf-8", "replace"))
    if not isinstance(data, dict):
        return ErrorInfo()
    err = data.get("error")
    if err is None:  # OpenRouter: an error in the choice of a 200 completion
        choices = data.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            err = choices[0].get("error")
    if isinstance(err, str):
        return ErrorInfo(message=err)
    if not isinstance(err, dict):
        return ErrorInfo()
    raw_code = err.get("code")
    details = err.get("details")
    code = ""
    status = None
    if isinstance(raw_code, int) and not isinstance(raw_code, bool):
        status = raw_code
    elif isinstance(raw_code, str):
        code = raw_code
    if not code and isinstance(details, dict) and isinstance(details.get("error_code"), str):
        code = details["error_code"]
    meta = err.get("metadata")
    metadata = meta if isinstance(meta, dict) else {}
    message = str(err.get("message") or "")
    raw = metadata.get("raw")
    if raw:
        message = f"{message} ({str(raw)[:200]})"
    return ErrorInfo(str(err.get("type") or ""), code, status, message, metadata)


def classify(
    failure: Failure,
    *,
    attempt: int,
    short_cooldown_s: float,
    bad_key_cooldown_s: float,
    now_epoch: float,
    billing_cooldown_s: float = 21600.0,
) -> Decision:
    exc = failure.exc
    short = short_cooldown_s
    if failure.stage == "connect":
        if isinstance(exc, httpx.ConnectTimeout):
            return Decision(Action.FAILOVER, Kind.TIMEOUT, short, "connect timeout", "timed out")
        text = str(exc or failure.detail)
        if "name or service" in text.lower() or "getaddrinfo" in text.lower():
            return Decision(
                Action.FAILOVER, Kind.DOWN, short, f"DNS failure: {text}", "unreachable"
            )
        return Decision(
            Action.FAILOVER, Kind.DOWN, short, f"connection failed: {text}", "unreachable"
        )
    if failure.stage == "first_byte":
        return Decision(Action.FAILOVER, Kind.TIMEOUT, short, "no first byte in time", "timed out")
    if failure.stage == "total":
        return Decision(Action.FAILOVER, Kind.TIMEOUT, short, "total timeout", "timed out")
    if failure.stage == "reset":
        action = Action.RETRY_SAME if attempt == 0 else Action.FAILOVER
        return Decision(
            action,
            Kind.DOWN,
            0.0 if attempt == 0 else short,
            f"connection reset: {exc}",
            "connection reset",
        )
    if failure.stage == "refused":
        return Decision(
            Action.NEXT, Kind.REFUSED, 0.0, failure.detail, "refused this request (filtered)"
        )
    if failure.stage == "body":  # an answer we could not use: no cooldown, ask the next
        return Decision(
            Action.FAILOVER, Kind.BAD_RESPONSE, 0.0, failure.detail or "bad answer", "bad answer"
        )

    info = error_info(failure.body)
    status = failure.status or 0
    if status == 200 and info.status is not None:
        status = info.status  # OpenRouter: a provider error wrapped in a 200
    cause = info.type if info.code in ("", info.type) else f"{info.type}/{info.code}".strip("/")
    said = " ".join(str(x) for x in (status, cause, info.message) if x)
    wait = retry_after_s(failure.headers, now_epoch)
    if wait is not None:
        wait = min(wait, billing_cooldown_s)
    if status == 429 and wait is None:
        wait = rate_limit_reset_s(failure.headers, now_epoch)
    base = _base(info, status, said, wait, short, bad_key_cooldown_s, billing_cooldown_s)
    decided = _should_retry(base, failure.headers, wait, attempt, short)
    return replace(decided, status=status or None)


def _billing_words(status: int, info: ErrorInfo, wait: float | None) -> str | None:
    if info.code in OPENAI_BILLING:
        return OPENAI_BILLING[info.code]
    if info.type == "insufficient_quota":
        return OPENAI_BILLING["insufficient_quota"]
    if info.code in ANTHROPIC_BILLING:
        return ANTHROPIC_BILLING[info.code]
    lowered = info.message.lower()
    for marker, words in BILLING_MESSAGES:
        if marker in lowered:
            return words
    if info.type == "billing_error":
        return "billing problem (payment required)"
    if status == 402 and wait is None:
        source = str(info.metadata.get("limit_source", ""))
        return OPENROUTER_LIMITS.get(source, "out of credit")
    return None


def _is_moderation(info: ErrorInfo) -> bool:
    return "reasons" in info.metadata or "flagged_input" in info.metadata


def _base(
    info: ErrorInfo,
    status: int,
    said: str,
    wait: float | None,
    short: float,
    bad_key: float,
    billing: float,
) -> Decision:
    lowered = f"{info.type} {info.code} {info.message}".lower()
    words = _billing_words(status, info, wait)
    if words is not None:
        return Decision(Action.FAILOVER, Kind.BILLING, billing, f"{words}: {said}", words)
    if status == 402:  # with Retry-After: OpenRouter's in-flight budget, a wait
        return Decision(
            Action.FAILOVER, Kind.RATE_LIMITED, wait or short, f"spend paced: {said}", "paced"
        )
    if status == 401 or info.type == "authentication_error" or info.code == "invalid_api_key":
        return Decision(
            Action.FAILOVER, Kind.BAD_KEY, bad_key, f"key rejected: {said}", "key rejected"
        )
    if status == 403 and _is_moderation(info):
        reasons = ", ".join(str(r) for r in info.metadata.get("reasons") or []) or "moderation"
        return Decision(
            Action.NEXT,
            Kind.REFUSED,
            0.0,
            f"input flagged by moderation ({reasons}): {said}",
            "refused this request (moderation)",
        )
    if status == 403 or info.type == "permission_error":
        return Decision(
            Action.FAILOVER, Kind.BAD_KEY, bad_key, f"key not allowed: {said}", "key not allowed"
        )
    if status == 408 or info.type == "timeout_error":
        return Decision(
            Action.FAILOVER,
            Kind.TIMEOUT,
            short if wait is None else wait,
            f"timeout: {said}",
            "timed out",
        )
    if status == 429 or info.type == "rate_limit_error":
        return Decision(
            Action.FAILOVER,
            Kind.RATE_LIMITED,
            short if wait is None else wait,
            f"rate limited: {said}",
            "rate limited",
        )
    if status >= 500 or info.type in ("overloaded_error", "api_error"):
        words = "overloaded" if status == 529 or info.type == "overloaded_error" else "down"
        return Decision(
            Action.FAILOVER,
            Kind.DOWN,
            short if wait is None else wait,
            f"server error: {said}",
            words,
        )
    if any(marker in lowered for marker in CONTEXT_MARKERS):
        return Decision(
            Action.LARGER_CONTEXT, Kind.CONTEXT, 0.0, f"context too long: {said}", "context"
        )
    if status == 404 or info.type == "not_found_error" or info.code == "model_not_found":
        return Decision(
            Action.FAILOVER,
            Kind.MISCONFIGURED,
            bad_key,
            f"model or URL not found: {said}",
            "model or URL not found",
        )
    if status == 413 or info.type == "request_too_large":
        return Decision(
            Action.NEXT, Kind.INVALID, 0.0, f"request too large: {said}", "request too large"
        )
    if status in (400, 422):
        return Decision(
            Action.ABORT, Kind.INVALID, 0.0, f"request rejected: {said}", "request rejected"
        )
    if status == 200:  # an error inside a 200 without a numeric code (mid-generation)
        return Decision(
            Action.FAILOVER, Kind.DOWN, short, f"error inside the answer: {said}", "down"
        )
    return Decision(
        Action.FAILOVER, Kind.BAD_RESPONSE, short, f"unexpected: {said}", "unexpected answer"
    )


# The body names the cause (one a person must fix, or this very input): a generic header
# does not overrule it.
_BODY_WINS = (Kind.BILLING, Kind.BAD_KEY, Kind.MISCONFIGURED, Kind.CONTEXT, Kind.REFUSED)


def _should_retry(
    d: Decision, headers: Mapping[str, str], wait: float | None, attempt: int, short: float
) -> Decision:
    said = (_header(headers, "x-should-retry") or "").strip().lower()
    if said not in ("true", "false") or d.kind in _BODY_WINS:
        return d
    if said == "true":
        if d.action in (Action.ABORT, Action.NEXT):
            d = replace(d, action=Action.FAILOVER, cooldown_s=short if wait is None else wait)
        if attempt == 0 and not wait and d.kind is not Kind.RATE_LIMITED:
            return replace(d, action=Action.RETRY_SAME, cooldown_s=0.0)
        return d
    if d.kind in (Kind.DOWN, Kind.TIMEOUT) and d.action is Action.FAILOVER:
        return replace(
            d, action=Action.NEXT, cooldown_s=0.0, reason=f"{d.reason} (x-should-retry: false)"
        )
    return d
