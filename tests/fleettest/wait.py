"""The one "wait until" for tests: a condition, re-checked when something says it changed.

A test never sleeps to let something happen; it names the condition it needs and the
signal that may make it true. `changed` is an event the code under test sets (a recording
room's, a service's); `poll_s` bounds the wait between checks for state that has no
signal of its own (say, what a separate server holds). `timeout` ends it with
an error that says what was awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_until(
    predicate: Callable[[], T],
    *,
    changed: asyncio.Event,
    poll_s: float | None = None,
    timeout: float = 30.0,
    what: str = "",
) -> T:
    """Until `predicate()` is truthy; returns that value.

    Re-checked at every `changed` event, and also every `poll_s` when part of the state
    signals nothing (the Gitea stand-in, the fake models).
    """

    async def loop() -> T:
        while True:
            changed.clear()  # before the check, so a change during it is not lost
            value = predicate()
            if value:
                return value
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), poll_s)

    try:
        return await asyncio.wait_for(loop(), timeout)
    except TimeoutError:
        name = what or getattr(predicate, "__name__", repr(predicate))
        raise TimeoutError(f"not true within {timeout}s: {name}") from None


async def answer_of(
    ask: Callable[[], Awaitable[T | None]],
    *,
    poll_s: float,
    timeout: float,
    what: str,
) -> T:
    """Until an outside server's answer (`ask()`) is not None; returns it.

    For servers that signal nothing a test could wait on (a child process's port, a
    cluster's stream state): they are asked again every `poll_s`, under one deadline.
    """
    never = asyncio.Event()

    async def loop() -> T:
        while True:
            value = await ask()
            if value is not None:
                return value
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(never.wait(), poll_s)

    try:
        return await asyncio.wait_for(loop(), timeout)
    except TimeoutError:
        raise TimeoutError(f"no answer within {timeout}s: {what}") from None
