"""The one error classifier every provider goes through.

It reads the HTTP status, the headers and the error body (OpenAI's `error.code`,
Anthropic's `error.type`, OpenRouter's wrapped provider errors, which may even arrive with
HTTP 200), or the transport exception, and decides: retry the same provider once, fail over
(with a cooldown of some length), fail over to a provider with a larger context, or abort.
A new provider therefore needs a wire format, never new failover code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

import httpx


class Action(StrEnum):
    RETRY_SAME = "retry_same"
    FAILOVER = "failover"
    LARGER_CONTEXT = "larger_context"
    ABORT = "abort"


class Kind(StrEnum):
    BAD_KEY = "bad_key"
    RATE_LIMITED = "rate_limited"
    DOWN = "down"
    TIMEOUT = "timeout"
    BAD_RESPONSE = "bad_response"
    CONTEXT = "context_length"
    MISCONFIGURED = "misconfigured"
    INVALID = "invalid_request"


@dataclass(frozen=True)
class Failure:
    """What went wrong on one request; `stage` says how far it got."""

    stage: str  # "connect" | "first_byte" | "total" | "http" | "body"
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


CONTEXT_MARKERS = (
    "context_length_exceeded",
    "maximum context length",
    "context length",
    "context window",
    "prompt is too long",
    "too many tokens",
    "reduce the length",
)


def retry_after_s(headers: Mapping[str, str], now_epoch: float) -> float | None:
    """`Retry-After` as seconds or an HTTP date; `retry-after-ms` as sent by some APIs."""
    lower = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lower:
        try:
            return max(float(lower["retry-after-ms"]) / 1000, 0.0)
        except ValueError:
            pass
    value = lower.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - now_epoch, 0.0)


def _error_of(body: bytes) -> tuple[str, str, Any]:
    """(type, message, code) from an error body of any of the known shapes."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return "", body[:200].decode("utf-8", "replace"), None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        meta = err.get("metadata") or {}
        raw = meta.get("raw") if isinstance(meta, dict) else None
        message = str(err.get("message", ""))
        if raw:
            message = f"{message} ({str(raw)[:200]})"
        return str(err.get("type") or ""), message, err.get("code")
    if isinstance(err, str):
        return "", err, None
    return "", "", None


def classify(
    failure: Failure,
    *,
    attempt: int,
    short_cooldown_s: float,
    bad_key_cooldown_s: float,
    now_epoch: float,
) -> Decision:
    exc = failure.exc
    if failure.stage == "connect":
        if isinstance(exc, httpx.ConnectTimeout):
            return Decision(Action.FAILOVER, Kind.TIMEOUT, short_cooldown_s, "connect timeout")
        text = str(exc or failure.detail)
        if "name or service" in text.lower() or "getaddrinfo" in text.lower():
            return Decision(Action.FAILOVER, Kind.DOWN, short_cooldown_s, f"DNS failure: {text}")
        return Decision(Action.FAILOVER, Kind.DOWN, short_cooldown_s, f"connection failed: {text}")
    if failure.stage == "first_byte":
        return Decision(Action.FAILOVER, Kind.TIMEOUT, short_cooldown_s, "no first byte in time")
    if failure.stage == "total":
        return Decision(Action.FAILOVER, Kind.TIMEOUT, short_cooldown_s, "total timeout")
    if failure.stage == "reset":
        if attempt == 0:
            return Decision(Action.RETRY_SAME, Kind.DOWN, 0.0, f"connection reset: {exc}")
        return Decision(Action.FAILOVER, Kind.DOWN, short_cooldown_s, f"connection reset: {exc}")

    status = failure.status or 0
    err_type, message, code = _error_of(failure.body)
    if status == 200 and isinstance(code, int):
        status = code  # OpenRouter: a provider error wrapped in a 200
    said = f"{status} {err_type or ''} {message}".strip()
    lowered = f"{err_type} {message} {code}".lower()

    if failure.stage == "body" and status in (0, 200):
        return Decision(Action.FAILOVER, Kind.BAD_RESPONSE, 0.0, failure.detail or said)
    if status in (401, 403) or err_type in ("authentication_error", "permission_error"):
        return Decision(Action.FAILOVER, Kind.BAD_KEY, bad_key_cooldown_s, f"key rejected: {said}")
    if status == 429 or err_type == "rate_limit_error":
        wait = retry_after_s(failure.headers, now_epoch)
        return Decision(
            Action.FAILOVER,
            Kind.RATE_LIMITED,
            short_cooldown_s if wait is None else wait,
            f"rate limited: {said}",
        )
    if status >= 500 or err_type in ("overloaded_error", "api_error"):
        return Decision(Action.FAILOVER, Kind.DOWN, short_cooldown_s, f"server error: {said}")
    if any(marker in lowered for marker in CONTEXT_MARKERS):
        return Decision(Action.LARGER_CONTEXT, Kind.CONTEXT, 0.0, f"context too long: {said}")
    if status == 404:
        return Decision(
            Action.FAILOVER,
            Kind.MISCONFIGURED,
            bad_key_cooldown_s,
            f"model or URL not found: {said}",
        )
    if status in (400, 413, 422):
        return Decision(Action.ABORT, Kind.INVALID, 0.0, f"request rejected: {said}")
    return Decision(Action.FAILOVER, Kind.BAD_RESPONSE, short_cooldown_s, f"unexpected: {said}")
