"""The chain against fake providers on loopback that speak the real wire formats."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import fleettest.models_fake as fakes
from fleetcore.models.chain import ChainExhausted, FallbackChain, NoPrivateProvider
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
