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


async def chain_test(cfg: FleetConfig, break_primary: bool) -> int:
    if not cfg.fallback_providers:
        print("no providers configured (fallback_providers is empty)")
        return 2
    soul = cfg.soul.read_text(encoding="utf-8")
    chain = FallbackChain.from_config(cfg.model, cfg.fallback_providers, cfg.chain, soul)
    try:
        print(f"{'provider':<16} {'model':<28} {'status':<10} {'latency':>9}  cooldown")
        for name in chain.names:
            t0 = time.perf_counter()
            try:
                await chain.complete_with(name, PROMPT, max_tokens=8)
                status, detail = "ok", ""
            except ChainError as exc:
                status, detail = "FAILED", str(exc).split(": ", 1)[-1][:80]
            ms = (time.perf_counter() - t0) * 1000
            model = chain.provider(name).cfg.model
            print(f"{name:<16} {model:<28} {status:<10} {ms:>7.0f}ms  {detail}")
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
                print(f"  {h.name}: {h.state} until {h.until:%H:%M:%S} UTC ({h.reason[:80]})")
        return 0
    finally:
        await chain.aclose()


def chain_test_main(cfg: FleetConfig, break_primary: bool) -> int:
    return asyncio.run(chain_test(cfg, break_primary))
