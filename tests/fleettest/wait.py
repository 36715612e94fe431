"""The one "wait until" for tests: a condition, re-checked when something says it changed.

A test never sleeps to let something happen; it names the condition it needs and the
signal that may make it true. `changed` is an event the code under test sets (a recording
room's, a service's); `poll_s` bounds the wait between checks for state that has no
signal of its own (say, what a separate server holds). Either way, `timeout` ends it with
an error that says what was awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_until(
    predicate: Callable[[], T],
    *,
    changed: asyncio.Event | None = None,
    poll_s: float | None = None,
    timeout: float = 30.0,
    what: str = "",
) -> T:
    """Until `predicate()` is truthy; returns that value."""
    if changed is None and poll_s is None:
        raise TypeError("wait_until needs a `changed` event, a `poll_s`, or both")

    async def loop() -> T:
        while True:
            if changed is not None:
                changed.clear()  # before the check, so a change during it is not lost
            value = predicate()
            if value:
                return value
            if changed is None:
                await asyncio.sleep(poll_s or 0)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), poll_s)

    try:
        return await asyncio.wait_for(loop(), timeout)
    except TimeoutError:
        name = what or getattr(predicate, "__name__", repr(predicate))
        raise TimeoutError(f"not true within {timeout}s: {name}") from None
