"""The chain against fake providers on loopback that speak the real wire formats."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import fleettest.models_fake as fakes
from fleetcore.models.chain import (
    ChainExhausted,
    FallbackChain,
    NoPrivateProvider,
    RequestRejected,
)
from fleetcore.models.config import ChainConfig, ProviderConfig

SOUL = "You are Hermes."
CFG = ChainConfig(
    connect_timeout_s=1,
    first_byte_timeout_s=0.5,
    total_timeout_s=2,
    short_cooldown_s=30,
    bad_key_cooldown_s=3600,
    default_deadline_s=5,
)
ASK = [{"role": "user", "content": "hello"}]


def prov(name: str, fp: fakes.FakeProvider | None = None, **kw: object) -> ProviderConfig:
    base = fp.base_url if fp is not None else fakes.refused_url()
    kind = fp.kind if fp is not None else "openai"
    return ProviderConfig(
        provider=name, kind=kind, model=f"{name}-model", base_url=base, api_key_env="FAKE_KEY", **kw
    )  # type: ignore[arg-type]


@pytest.fixture
async def trio() -> AsyncIterator[
    tuple[fakes.FakeProvider, fakes.FakeProvider, fakes.FakeProvider]
]:
    async with (
        fakes.FakeProvider("openai") as a,
        fakes.FakeProvider("anthropic") as b,
        fakes.FakeProvider("openai") as c,
    ):
        a.behave(fakes.ok("from a"))
        b.behave(fakes.ok("from b"))
        c.behave(fakes.ok("from c"))
        yield a, b, c


def chain(*providers: ProviderConfig, now: list[float] | None = None) -> FallbackChain:
    clock = (lambda: now[0]) if now is not None else None
    kw = {"clock": clock} if clock else {}
    return FallbackChain(list(providers), CFG, SOUL, primary=providers[0].provider, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "failure",
    [
        fakes.status(401),
        fakes.status(403),
        fakes.rate_limited("3"),
        fakes.status(500),
        fakes.status(503),
        fakes.status(529),
        fakes.hang(),
        fakes.close(),
        fakes.bad_json(),
        fakes.empty(),
        fakes.truncated(),
        fakes.wrapped_error(502),
    ],
    ids=lambda b: f"{b.mode}-{b.status}",
)
async def test_each_failure_class_fails_over(trio, failure, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FAKE_KEY", "k")
    a, b, _ = trio
    a.behave(failure)
    ch = chain(prov("a", a), prov("b", b))
    try:
        answer = await ch.complete(ASK)
    finally:
        await ch.aclose()
    assert (answer.text, answer.provider, answer.model) == ("from b", "b", "b-model")
    assert answer.attempts[-1] == "b" and "a" in answer.attempts


async def test_refused_connection_fails_over_and_soul_is_the_system_prompt(
    trio, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FAKE_KEY", "secret-key")
    _, b, c = trio
    ch = chain(prov("dead"), prov("b", b), prov("c", c))
    answer = await ch.complete(ASK)
    await ch.aclose()
    assert answer.provider == "b"
    sent = b.requests[0]
    assert sent["system"] == SOUL  # Anthropic: top-level system
    assert b.headers[0]["x-api-key"] == "secret-key"
    assert b.headers[0]["anthropic-version"] == "2023-06-01"
    await_c = chain(prov("c", c))
    await await_c.complete(ASK)
    await await_c.aclose()
    assert c.requests[0]["messages"][0] == {"role": "system", "content": SOUL}
    assert c.headers[0]["authorization"] == "Bearer secret-key"


async def test_cooling_provider_gets_no_request_and_retry_after_is_honoured(
    trio, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FAKE_KEY", "k")
    a, b, _ = trio
    now = [1000.0]
    a.behave(fakes.rate_limited("10"))
    ch = chain(prov("a", a), prov("b", b), now=now)
    assert (await ch.complete(ASK)).provider == "b"
    assert len(a.requests) == 1
    a.behave(fakes.ok("a is back"))
    for _ in range(5):
        assert (await ch.complete(ASK)).provider == "b"
    assert len(a.requests) == 1  # skipped without a request while cooling
    assert ch.health()[0].state == "cooling"
    now[0] += 10.5
    assert (await ch.complete(ASK)).provider == "a"
    await ch.aclose()


async def test_bad_key_shows_in_health_and_status(trio, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FAKE_KEY", "k")
    a, b, _ = trio
    a.behave(fakes.status(401, {"error": {"message": "Invalid API key"}}))
    ch = chain(prov("a", a), prov("b", b))
    await ch.complete(ASK)
    await ch.aclose()
    assert ch.health()[0].state == "bad_key"
    assert "a (a-model): BAD KEY until" in ch.status_text()
    assert "b (b-model): ok" in ch.status_text()


async def test_all_down_is_one_clear_error_listing_each(trio, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FAKE_KEY", "k")
    a, b, _ = trio
    a.behave(fakes.status(401))
    b.behave(fakes.status(503))
    ch = chain(prov("a", a), prov("b", b), prov("dead"))
    with pytest.raises(ChainExhausted) as info:
        await ch.complete(ASK, deadline_s=1)
    await ch.aclose()
    text = str(info.value)
    assert (
        "a: key rejected" in text
        and "b: server error" in text
        and "dead: connection failed" in text
    )


async def test_all_down_has_a_brief_for_a_room_without_the_providers_words(
    trio, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FAKE_KEY", "k")
    a, b, _ = trio
    # OpenAI's own 401 quotes part of the key it refused: the long error may say it, the
    # brief (what a room is told) must not.
    leaked = "Incorrect API key provided: sk-proj-abcd****wxyz"
    a.behave(fakes.status(401, {"error": {"message": leaked, "code": "invalid_api_key"}}))
    b.behave(fakes.status(503))
    ch = chain(prov("a", a), prov("b", b), prov("dead"))
    with pytest.raises(ChainExhausted) as info:
        await ch.complete(ASK, deadline_s=1)
    await ch.aclose()
    assert info.value.brief == {"a": "401", "b": "503", "dead": "down"}
    assert "sk-proj" in str(info.value)  # the operator's log keeps the detail


async def test_waits_for_the_earliest_provider_within_the_deadline(trio, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FAKE_KEY", "k")
    a, _, _ = trio
    now = [0.0]
    slept: list[float] = []

    async def fake_sleep(s: float) -> None:
        slept.append(s)
        now[0] += s
        a.behave(fakes.ok("after the wait"))

    a.behave(fakes.rate_limited("2"))
    ch = FallbackChain([prov("a", a)], CFG, SOUL, clock=lambda: now[0], sleep=fake_sleep)
    answer = await ch.complete(ASK, deadline_s=5)
    assert answer.text == "after the wait" and slept == [2.0]
    a.behave(fakes.rate_limited("60"))
    ch2 = FallbackChain([prov("a", a)], CFG, SOUL, clock=lambda: now[0], sleep=fake_sleep)
    with pytest.raises(ChainExhausted):
        await ch2.complete(ASK, deadline_s=5)
    await ch.aclose()
    await ch2.aclose()


async def test_sensitive_work_never_reaches_a_logging_provider(trio, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FAKE_KEY", "k")
    a, b, _ = trio
    ch = chain(prov("free", a, logs_prompts=True), prov("local", b))
    answer = await ch.complete(ASK, sensitive=True)
    assert answer.provider == "local" and a.requests == []
    b.behave(fakes.status(503))
    with pytest.raises(ChainExhausted):
        await ch.complete(ASK, sensitive=True, deadline_s=0)
    assert a.requests == []  # down or not, the logging provider never saw it
    only_logging = chain(prov("free", a, logs_prompts=True))
    with pytest.raises(NoPrivateProvider):
        await only_logging.complete(ASK, sensitive=True)
    await ch.aclose()
    await only_logging.aclose()


async def test_context_length_moves_to_a_larger_context(trio, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FAKE_KEY", "k")
    a, b, c = trio
    a.behave(fakes.context_too_long())
    ch = chain(
        prov("small", a, context_tokens=8192),
        prov("same", c, context_tokens=8192),
        prov("big", b, context_tokens=200_000),
    )
    answer = await ch.complete(ASK)
    await ch.aclose()
    assert answer.provider == "big" and c.requests == []


async def test_footer_names_the_provider_that_answered(trio, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FAKE_KEY", "k")
    a, b, _ = trio
    a.behave(fakes.status(500))
    ch = chain(prov("a", a), prov("b", b))
    answer = await ch.complete(ASK)
    await ch.aclose()
    assert FallbackChain.footer(answer) == "— answered by b (b-model)"


# -- the providers' real errors, end to end ------------------------------------------------

ABORTS = {"openai_invalid_request", "anthropic_invalid_request"}
STATE = {  # the primary's state after the fault; anything else: "cooling" or "ok"
    "billing": {
        "openai_insufficient_quota",
        "openai_spend_limit_exceeded",
        "anthropic_spend_limit_reached",
        "anthropic_usage_limits_reached",
        "anthropic_credit_balance_too_low",
        "anthropic_billing_error",
        "openrouter_insufficient_credits",
    },
    "bad_key": {
        "openai_invalid_api_key",
        "anthropic_authentication_error",
        "anthropic_permission_error",
    },
    "ok": {  # request-specific, or no cooldown earned
        "openrouter_moderation",
        "anthropic_request_too_large",
        "openai_context_length_exceeded",
        "anthropic_prompt_too_long",
    },
}


@pytest.mark.parametrize("name", sorted(fakes.FAULTS))
async def test_every_real_error_from_the_primary(name, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Each provider's documented error, as the provider sends it, on the primary."""
    monkeypatch.setenv("FAKE_KEY", "k")
    fault = fakes.fault(name)
    async with (
        fakes.FakeProvider(fakes.wire_of(fault), fault) as a,
        fakes.FakeProvider("openai", fakes.ok("from b")) as b,
    ):
        ch = chain(prov("a", a, context_tokens=8192), prov("b", b, context_tokens=200_000))
        try:
            if name in ABORTS:
                with pytest.raises(RequestRejected):
                    await ch.complete(ASK)
                assert b.requests == []  # an invalid request goes nowhere else
                return
            answer = await ch.complete(ASK)
        finally:
            await ch.aclose()
    assert (answer.text, answer.provider) == ("from b", "b")
    state = next((s for s, names in STATE.items() if name in names), "cooling")
    assert ch.health()[0].state == state, ch.status_text()


async def test_billing_takes_a_provider_out_for_hours_and_status_says_why(  # type: ignore[no-untyped-def]
    trio, monkeypatch
) -> None:
    monkeypatch.setenv("FAKE_KEY", "k")
    a, b, c = trio
    a.behave(fakes.openai_insufficient_quota())
    b.behave(fakes.anthropic_spend_limit_reached())
    now = [1000.0]
    ch = chain(prov("a", a), prov("b", b), prov("c", c), now=now)
    assert (await ch.complete(ASK)).provider == "c"
    text = ch.status_text()
    assert "- a (a-model): OUT OF CREDIT (QUOTA EXHAUSTED): a person must act (add credit)" in text
    assert "- b (b-model): MONTHLY SPEND LIMIT REACHED: a person must act (raise the spend" in text
    assert "insufficient_quota" in text and "enforced_spend_limit_reached" in text
    a.behave(fakes.ok("a is back"))
    b.behave(fakes.ok("b is back"))
    now[0] += 3 * 3600  # far past the short and bad-key cooldowns
    for _ in range(3):
        assert (await ch.complete(ASK)).provider == "c"
    assert (len(a.requests), len(b.requests)) == (1, 1)  # no request while out of credit
    h = ch.health()[0]
    assert (h.state, h.words, h.last_error) == (
        "billing",
        "out of credit (quota exhausted)",
        "billing",
    )
    assert h.cooldown_left_s == pytest.approx(3 * 3600)
    now[0] += 3 * 3600 + 1  # billing_cooldown_s: 6 h by default
    assert (await ch.complete(ASK)).provider == "a"
    await ch.aclose()


async def test_credit_balance_too_low_no_longer_stops_the_chain(trio, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FAKE_KEY", "k")
    _, b, c = trio
    b.behave(fakes.anthropic_credit_balance_too_low())  # a 400, but about money
    ch = chain(prov("b", b), prov("c", c))
    assert (await ch.complete(ASK)).provider == "c"
    assert "OUT OF CREDIT" in ch.status_text()
    await ch.aclose()


async def test_a_moderation_flag_is_about_this_request_only(trio, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FAKE_KEY", "k")
    a, b, c = trio
    a.behave(fakes.openrouter_moderation())
    ch = chain(prov("a", a), prov("b", b))
    assert (await ch.complete(ASK)).provider == "b"
    assert ch.health()[0].state == "ok"  # a good key: no cooldown for anyone's next request
    a.behave(fakes.ok("from a"))
    assert (await ch.complete(ASK)).provider == "a"
    # Every provider refuses: one clear error, each asked once, no waiting.
    a.behave(fakes.openrouter_moderation())
    c.behave(fakes.openrouter_moderation())
    both = chain(prov("a", a), prov("c", c))
    asked = len(a.requests), len(c.requests)
    with pytest.raises(ChainExhausted) as info:
        await both.complete(ASK, deadline_s=60)
    assert (len(a.requests), len(c.requests)) == (asked[0] + 1, asked[1] + 1)
    assert "input flagged by moderation (harassment)" in str(info.value)
    await ch.aclose()
    await both.aclose()


async def test_an_error_inside_a_200_is_never_the_answer(trio, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FAKE_KEY", "k")
    a, b, _ = trio
    a.behave(fakes.openrouter_finish_reason_error())
    ch = chain(prov("a", a), prov("b", b))
    answer = await ch.complete(ASK)
    assert (answer.text, answer.provider) == ("from b", "b")  # not the partial "Evidence:"
    assert "Provider disconnected unexpectedly" in ch.health()[0].reason
    await ch.aclose()


async def test_x_should_retry_and_retry_after_on_an_overload(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FAKE_KEY", "k")
    async with (
        fakes.FakeProvider("anthropic", fakes.anthropic_overloaded_error()) as a,
        fakes.FakeProvider("openai", fakes.ok("from b")) as b,
    ):
        now = [0.0]
        ch = chain(prov("a", a), prov("b", b), now=now)
        # 529 + x-should-retry: true and no Retry-After: asked once more at once, then b.
        answer = await ch.complete(ASK)
        assert answer.attempts == ("a", "a", "b") and len(a.requests) == 2
        assert ch.health()[0].cooldown_left_s == pytest.approx(30)
        # 529 + retry-after: 90: no second ask, and the 90 s are honoured.
        now[0] += 31
        a.behave(fakes.anthropic_overloaded_error(retry_after="90"))
        answer = await ch.complete(ASK)
        assert answer.attempts == ("a", "b") and len(a.requests) == 3
        assert ch.health()[0].cooldown_left_s == pytest.approx(90)
        await ch.aclose()
