"""The fake providers, checked by the official SDKs themselves (`openai`, `anthropic`).

Success bodies pass the SDKs' strict response validation (and pydantic strict validation of
their response types); each named fault raises the SDK's own exception class, with the
request id, error type and code the SDK reads from the body and headers. The SDKs' retries
are off (`max_retries=0`) except where a test counts them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import openai
import pydantic
import pytest
from anthropic.types import Message
from anthropic.types.shared import ErrorResponse as AnthropicErrorResponse
from openai.types.chat import ChatCompletion
from openai.types.shared import ErrorObject as OpenAIErrorObject

import fleettest.models_fake as fakes

ASK = [{"role": "user", "content": "Reply with the single word: ready"}]


class Rig:
    """One fake of each wire format, and an SDK client for each (clients are slow to make)."""

    def __init__(self, o: fakes.FakeProvider, a: fakes.FakeProvider) -> None:
        self.o, self.a = o, a
        self.oc = openai.AsyncOpenAI(
            base_url=o.base_url,
            api_key="sk-test",
            max_retries=0,
            _strict_response_validation=True,
        )
        self.ac = anthropic.AsyncAnthropic(
            base_url=a.origin,
            api_key="sk-ant-test",
            max_retries=0,
            _strict_response_validation=True,
        )


@pytest.fixture(scope="module")
async def rig() -> AsyncIterator[Rig]:
    async with fakes.FakeProvider("openai") as o, fakes.FakeProvider("anthropic") as a:
        r = Rig(o, a)
        yield r
        await r.oc.close()
        await r.ac.close()


@pytest.fixture
def servers(rig: Rig) -> tuple[fakes.FakeProvider, fakes.FakeProvider]:
    for fake in (rig.o, rig.a):
        fake.behave(fakes.ok())
        fake.requests.clear()
        fake.headers.clear()
        fake.answers.clear()
    return rig.o, rig.a


@pytest.fixture
def oc(rig: Rig, servers: object) -> openai.AsyncOpenAI:
    return rig.oc


@pytest.fixture
def ac(rig: Rig, servers: object) -> anthropic.AsyncAnthropic:
    return rig.ac


async def ask_openai(client: openai.AsyncOpenAI) -> ChatCompletion:
    return await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]


async def ask_anthropic(client: anthropic.AsyncAnthropic) -> Message:
    return await client.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=ASK)  # type: ignore[arg-type]


async def test_openai_success_body_validates_strictly(servers, oc, ac) -> None:  # type: ignore[no-untyped-def]
    o, _ = servers
    o.behave(fakes.ok("ready"))
    client = oc
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=ASK,  # type: ignore[arg-type]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "ready"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert completion.model == "gpt-4o-mini"
    assert completion._request_id == raw.headers["x-request-id"]
    assert raw.headers["x-ratelimit-remaining-requests"].isdigit()
    strict = ChatCompletion.model_validate(raw.http_response.json(), strict=True)
    assert strict.created > 0 and strict.object == "chat.completion"


async def test_anthropic_success_body_validates_strictly(servers, oc, ac) -> None:  # type: ignore[no-untyped-def]
    _, a = servers
    a.behave(fakes.ok("ready"))
    client = ac
    raw = await client.messages.with_raw_response.create(
        model="claude-haiku-4-5",
        max_tokens=16,
        messages=ASK,  # type: ignore[arg-type]
    )
    message = await raw.parse()
    assert [b.text for b in message.content if b.type == "text"] == ["ready"]
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0
    assert message._request_id == raw.headers["request-id"]
    assert raw.headers["anthropic-ratelimit-requests-remaining"].isdigit()
    strict = Message.model_validate(raw.http_response.json(), strict=True)
    assert strict.type == "message" and strict.role == "assistant"


async def test_truncated_and_empty_answers_are_valid_bodies(servers, oc, ac) -> None:  # type: ignore[no-untyped-def]
    o, a = servers
    o.behave(fakes.truncated())
    a.behave(fakes.truncated())
    assert (await ask_openai(oc)).choices[0].finish_reason == "length"
    assert (await ask_anthropic(ac)).stop_reason == "max_tokens"
    o.behave(fakes.empty())
    assert (await ask_openai(oc)).choices[0].message.content == ""


# Each named fault: the SDK's own exception class, status, and what the SDK read from the
# body (OpenAI `type`/`code`, Anthropic `type`/`error_code`).
OPENAI_FAULTS: list[tuple[str, type[Exception], int, str | None, str | None]] = [
    ("openai_insufficient_quota", openai.RateLimitError, 429, "insufficient_quota",
     "insufficient_quota"),
    ("openai_spend_limit_exceeded", openai.RateLimitError, 429, "insufficient_quota",
     "organization_spend_limit_exceeded"),
    ("openai_rate_limit_exceeded", openai.RateLimitError, 429, "requests", "rate_limit_exceeded"),
    ("openai_invalid_api_key", openai.AuthenticationError, 401, "invalid_request_error",
     "invalid_api_key"),
    ("openai_model_not_found", openai.NotFoundError, 404, "invalid_request_error",
     "model_not_found"),
    ("openai_context_length_exceeded", openai.BadRequestError, 400, "invalid_request_error",
     "context_length_exceeded"),
    ("openai_server_error", openai.InternalServerError, 500, "server_error", None),
    ("openai_overloaded", openai.InternalServerError, 503, "server_error", None),
    ("openai_invalid_request", openai.BadRequestError, 400, "invalid_request_error",
     "invalid_type"),
    # OpenRouter speaks the OpenAI wire format: its numeric `code` is what the SDK keeps.
    ("openrouter_insufficient_credits", openai.APIStatusError, 402, None, "402"),
    ("openrouter_in_flight_budget", openai.APIStatusError, 402, None, "402"),
    ("openrouter_moderation", openai.PermissionDeniedError, 403, None, "403"),
    ("openrouter_timeout", openai.APIStatusError, 408, None, "408"),
    ("openrouter_rate_limited", openai.RateLimitError, 429, None, "429"),
    ("openrouter_model_down", openai.InternalServerError, 502, None, "502"),
    ("openrouter_no_provider", openai.InternalServerError, 503, None, "503"),
]  # fmt: skip

ANTHROPIC_FAULTS: list[tuple[str, type[Exception], int, str, str | None]] = [
    ("anthropic_authentication_error", anthropic.AuthenticationError, 401,
     "authentication_error", None),
    ("anthropic_permission_error", anthropic.PermissionDeniedError, 403, "permission_error",
     None),
    ("anthropic_not_found_error", anthropic.NotFoundError, 404, "not_found_error", None),
    ("anthropic_rate_limit_error", anthropic.RateLimitError, 429, "rate_limit_error", None),
    ("anthropic_spend_limit_reached", anthropic.RateLimitError, 429, "rate_limit_error",
     "enforced_spend_limit_reached"),
    ("anthropic_usage_limits_reached", anthropic.BadRequestError, 400, "invalid_request_error",
     None),
    ("anthropic_credit_balance_too_low", anthropic.BadRequestError, 400,
     "invalid_request_error", None),
    ("anthropic_billing_error", anthropic.PaymentRequiredError, 402, "billing_error", None),
    ("anthropic_api_error", anthropic.InternalServerError, 500, "api_error", None),
    ("anthropic_overloaded_error", anthropic.OverloadedError, 529, "overloaded_error", None),
    ("anthropic_request_too_large", anthropic.ContentTooLargeError, 413, "request_too_large",
     None),
    ("anthropic_invalid_request", anthropic.BadRequestError, 400, "invalid_request_error", None),
    ("anthropic_prompt_too_long", anthropic.BadRequestError, 400, "invalid_request_error", None),
]  # fmt: skip


def test_every_named_fault_is_checked_by_an_sdk() -> None:
    checked = {row[0] for row in OPENAI_FAULTS + ANTHROPIC_FAULTS}
    in_200 = {"openrouter_wrapped_error", "openrouter_finish_reason_error"}  # see below
    assert set(fakes.FAULTS) == checked | in_200


@pytest.mark.parametrize(
    ("name", "exc", "status", "type_", "code"), OPENAI_FAULTS, ids=[r[0] for r in OPENAI_FAULTS]
)
async def test_openai_sdk_raises_its_own_class(  # type: ignore[no-untyped-def]
    servers, oc, ac, name, exc, status, type_, code
) -> None:
    o, _ = servers
    fault = fakes.fault(name)
    o.behave(fault)
    client = oc
    with pytest.raises(exc) as info:
        await ask_openai(client)
    err = info.value
    assert isinstance(err, openai.APIStatusError)
    assert type(err) is exc  # not a subclass: exactly the SDK's class for this status
    assert err.status_code == status
    assert (err.type, err.code) == (type_, code)
    assert len(o.requests) == 1  # max_retries=0
    assert fault.body is not None
    if fault.provider == "openai":
        assert err.request_id == err.response.headers["x-request-id"]
        OpenAIErrorObject.model_validate(fault.body["error"], strict=True)
    else:
        assert err.response.headers["x-generation-id"].startswith("gen-")
        OpenRouterError.model_validate(fault.body, strict=True)


@pytest.mark.parametrize(
    ("name", "exc", "status", "type_", "error_code"),
    ANTHROPIC_FAULTS,
    ids=[r[0] for r in ANTHROPIC_FAULTS],
)
async def test_anthropic_sdk_raises_its_own_class(  # type: ignore[no-untyped-def]
    servers, oc, ac, name, exc, status, type_, error_code
) -> None:
    _, a = servers
    a.behave(fakes.fault(name))
    client = ac
    with pytest.raises(exc) as info:
        await ask_anthropic(client)
    err = info.value
    assert isinstance(err, anthropic.APIStatusError)
    assert err.status_code == status
    assert (err.type, err.error_code) == (type_, error_code)
    assert err.request_id == err.response.headers["request-id"]
    body = err.response.json()
    assert body["request_id"] == err.request_id  # the body's id is the header's
    if error_code == "enforced_spend_limit_reached":
        assert type(err).__name__ == "EnforcedSpendLimitReachedError"  # the SDK's own subclass
    if type_ == "request_too_large":
        # Anthropic's error document lists `request_too_large` (413, from its edge), but
        # the SDK's `ErrorType` and `ErrorObject` union do not: the body cannot validate.
        with pytest.raises(pydantic.ValidationError):
            AnthropicErrorResponse.model_validate(body, strict=True)
    else:
        AnthropicErrorResponse.model_validate(body, strict=True)


class OpenRouterErrorBody(pydantic.BaseModel):
    """OpenRouter's documented `ErrorResponse.error` (no SDK of theirs here)."""

    model_config = pydantic.ConfigDict(extra="forbid")
    code: int
    message: str
    metadata: dict[str, Any] | None = None


class OpenRouterError(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    error: OpenRouterErrorBody


async def test_errors_inside_a_200_get_past_the_status_check(servers, oc, ac) -> None:  # type: ignore[no-untyped-def]
    """OpenRouter's errors in a 200 are no status error to the SDK: only a body check sees
    them, which is why the chain reads the body of every 200 (and so does strict
    validation, which rejects both)."""
    o, _ = servers
    o.behave(fakes.openrouter_wrapped_error(502))
    client = oc
    with pytest.raises(openai.APIResponseValidationError):
        await ask_openai(client)
    wrapped = fakes.openrouter_wrapped_error(502).body
    OpenRouterError.model_validate(wrapped, strict=True)

    finished = fakes.openrouter_finish_reason_error()
    o.behave(finished)
    client = oc
    with pytest.raises(openai.APIResponseValidationError):
        await ask_openai(client)
    with pytest.raises(pydantic.ValidationError) as info:
        ChatCompletion.model_validate(finished.body, strict=True)
    # Only the OpenRouter-specific finish_reason differs from OpenAI's completion.
    assert [e["loc"] for e in info.value.errors()] == [("choices", 0, "finish_reason")]
    assert finished.body is not None
    OpenRouterErrorBody.model_validate(finished.body["choices"][0]["error"], strict=True)


@pytest.mark.parametrize(
    ("behaviour", "requests"),
    [
        # x-should-retry wins over the status, both ways (a 500 is retried by default, a
        # 400 is not); retry-after-ms keeps the SDK's wait short.
        (fakes.anthropic_api_error(should_retry="false"), 1),
        (fakes.anthropic_api_error(should_retry=None), 2),
        (fakes.status(400, None, **{"x-should-retry": "true", "retry-after-ms": "5"}), 2),
        (fakes.status(400, None, **{"retry-after-ms": "5"}), 1),
    ],
    ids=["500-false", "500-none", "400-true", "400-none"],
)
async def test_both_sdks_obey_x_should_retry(servers, oc, ac, behaviour, requests) -> None:  # type: ignore[no-untyped-def]
    o, a = servers
    headers = {**behaviour.headers, "retry-after-ms": "5"}
    o.behave(fakes.Behaviour("status", status=behaviour.status, headers=headers))
    a.behave(fakes.Behaviour("status", status=behaviour.status, headers=headers))
    oc, ac = oc.with_options(max_retries=1), ac.with_options(max_retries=1)
    with pytest.raises(openai.APIStatusError):
        await ask_openai(oc)
    with pytest.raises(anthropic.APIStatusError):
        await ask_anthropic(ac)
    assert (len(o.requests), len(a.requests)) == (requests, requests)
