"""`fleet chain test`: call every provider with a tiny prompt; optionally break the primary.

The seed's "test the chain": with `--break-primary` the primary's key is replaced by a bad
one inside this process only, and one chain request shows who answers instead.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from fleetcore.models.chain import ChainError, FallbackChain

if TYPE_CHECKING:
    from fleetcore.config import FleetConfig

PROMPT = [{"role": "user", "content": "Reply with the single word: ready"}]


def _left(seconds: float) -> str:
    """A cooldown left, for a person: "-", "25s", "59m 58s", "6h 0m"."""
    if seconds <= 0:
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def _error_class(chain: FallbackChain, name: str) -> str:
    last = chain.last_failure(name)
    if last is None:
        return "-"
    return f"{last.kind.value} ({last.words})" if last.words else last.kind.value


async def chain_test(cfg: FleetConfig, break_primary: bool) -> int:
    if not cfg.fallback_providers:
        print("no providers configured (fallback_providers is empty)")
        return 2
    soul = cfg.soul.read_text(encoding="utf-8")
    chain = FallbackChain.from_config(cfg.model, cfg.fallback_providers, cfg.chain, soul)
    try:
        print(
            f"{'provider':<16} {'model':<28} {'status':<8} {'latency':>9}  "
            f"{'last error class':<42} cooldown left"
        )
        details = []
        for name in chain.names:
            t0 = time.perf_counter()
            try:
                await chain.complete_with(name, PROMPT, max_tokens=8)
                status = "ok"
            except ChainError as exc:
                status = "FAILED"
                details.append(f"  {name}: {str(exc).split(': ', 1)[-1][:160]}")
            ms = (time.perf_counter() - t0) * 1000
            model = chain.provider(name).cfg.model
            left = _left(next(h.cooldown_left_s for h in chain.health() if h.name == name))
            print(
                f"{name:<16} {model:<28} {status:<8} {ms:>7.0f}ms  "
                f"{_error_class(chain, name):<42} {left}"
            )
        for line in details:
            print(line)
        primary = chain.names[0]
        if break_primary:
            chain.provider(primary).key_override = "sk-broken-on-purpose"
            print(f"\nprimary {primary}: key replaced with a bad one (in this process only)")
        t0 = time.perf_counter()
        try:
            answer = await chain.complete(PROMPT, max_tokens=8, deadline_s=30)
        except ChainError as exc:
            print(f"chain: FAILED: {exc}")
            return 1
        ms = (time.perf_counter() - t0) * 1000
        print(
            f"chain: answered by {answer.provider} ({answer.model}) in {ms:.0f} ms, "
            f"tried {' -> '.join(answer.attempts)}"
        )
        for h in chain.health():
            if h.state != "ok":
                why = f" ({h.words})" if h.words else ""
                print(
                    f"  {h.name}: {h.state}{why}, last error class {h.last_error}, "
                    f"cooldown left {_left(h.cooldown_left_s)} "
                    f"(until {h.until:%Y-%m-%d %H:%M:%S} UTC): {h.reason[:80]}"
                )
        return 0
    finally:
        await chain.aclose()


def chain_test_main(cfg: FleetConfig, break_primary: bool) -> int:
    return asyncio.run(chain_test(cfg, break_primary))
