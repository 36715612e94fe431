"""The fleet's one retry policy (fleetcore.retry): no server needed."""

from __future__ import annotations

import asyncio

import pytest

from fleetcore.retry import Backoff


def test_delays_double_up_to_the_cap() -> None:
    backoff = Backoff(1.0, 60.0)
    assert [backoff.delay(n) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff.delay(10_000) == 60  # no overflow however long it has failed


def test_jitter_stays_within_its_share_of_the_delay() -> None:
    backoff = Backoff(1.0, 30.0, jitter=0.5)
    for attempt, full in [(0, 1), (1, 2), (3, 8), (10, 30)]:
        delays = {backoff.delay(attempt) for _ in range(50)}
        assert all(full / 2 <= d <= full for d in delays)
        assert len(delays) > 1  # spread out, not one value for every client


@pytest.mark.parametrize(
    "args", [(0.0, 1.0), (2.0, 1.0), (1.0, 2.0, 0.5), (1.0, 2.0, 2.0, 1.0), (1.0, 2.0, 2.0, -0.1)]
)
def test_unusable_policies_are_refused(args: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="not a usable backoff"):
        Backoff(*args)


async def test_attempts_pace_the_tries_and_stop_at_the_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []

    async def record(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(asyncio, "sleep", record)
    tries = [attempt async for attempt in Backoff(0.25, 1.0).attempts(4)]
    assert tries == [0, 1, 2, 3]
    assert slept == [0.25, 0.5, 1.0]  # nothing before the first try
