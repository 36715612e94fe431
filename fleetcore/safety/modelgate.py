"""`fleet safety-test`: run `safety-tests.md` against each configured model and gate them.

Each provider is called on its own (no fallback: the point is to grade that model), with
SOUL.md as the system prompt as in production. The readiness file is what the bot's
conversation consults: a model that failed, or was never tested, gets no user conversation.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from fleetcore import data
from fleetcore.safety.modeltest import (
    ReadinessStore,
    SafetyTests,
    format_table,
    parse_safety_tests,
    run_safety_tests,
)

if TYPE_CHECKING:
    from fleetcore.config import FleetConfig
    from fleetcore.models.chain import FallbackChain


def readiness_path(cfg: FleetConfig) -> Path:
    return cfg.bot_dir / "model_readiness.json"


async def run_gate(
    chain: FallbackChain, models: list[str], tests: SafetyTests, store: ReadinessStore
) -> tuple[bool, str]:

    async def complete(name: str, prompt: str) -> str:
        answer = await chain.complete_with(name, [{"role": "user", "content": prompt}])
        return answer.text

    report = await run_safety_tests(complete, models, tests)
    store.record(report)
    return report.passed, format_table(report)


def safety_test_main(cfg: FleetConfig, model: str | None, all_models: bool) -> int:
    from fleetcore.models.chain import FallbackChain

    names = [p.provider for p in cfg.fallback_providers]
    if not names:
        print("no models configured (fallback_providers is empty)", file=sys.stderr)
        return 2
    if model is not None and model not in names:
        print(f"--model {model}: not one of {', '.join(names)}", file=sys.stderr)
        return 2
    chosen = [model] if model else names
    soul = cfg.soul.read_text(encoding="utf-8")
    chain = FallbackChain.from_config(cfg.model, cfg.fallback_providers, cfg.chain, soul)
    # The prompts ship inside the package, so an installed fleet gates models anywhere.
    tests = parse_safety_tests(data.read_text(data.SAFETY_TESTS))
    store = ReadinessStore(readiness_path(cfg))

    async def gate() -> tuple[bool, str]:
        try:
            return await run_gate(chain, chosen, tests, store)
        finally:
            await chain.aclose()

    passed, table = asyncio.run(gate())
    print(table)
    print("all models passed" if passed else "some models FAILED: they get no user conversation")
    return 0 if passed else 1
