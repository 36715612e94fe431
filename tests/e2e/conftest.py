"""End-to-end fixtures: a real bot, real operator clients, on the session's real Synapse."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fleet.local.botrunner import BotRunner
from fleet.local.operator import OperatorClient
from fleet.local.opsroom import ensure_operators_room
from fleetcore.config import FleetConfig, parse_config

REPO = Path(__file__).resolve().parents[2]
_counter = itertools.count()


@dataclass
class Fleet:
    cfg: FleetConfig
    runner: BotRunner
    bot_user: str
    operator: OperatorClient
    outsider: OperatorClient
    # A second operator account, not logged in until a test needs it.
    operator2: Any
    tmp: Path
    homeserver: str

    async def new_client(self, account: Any, name: str) -> OperatorClient:
        client = OperatorClient(
            self.homeserver, account.user_id, account.password, self.tmp / f"client-{name}"
        )
        await client.login(device_name=name)
        return client


def bot_config(
    tmp: Path,
    homeserver: str,
    bot_user: str,
    password: str,
    operators: list[str],
    trust: dict[str, Any] | None = None,
    **extra: Any,
) -> FleetConfig:
    secret = tmp / "bot-password"
    secret.write_text(password)
    secret.chmod(0o600)
    data: dict[str, Any] = {
        "state_dir": str(tmp / "state"),
        "soul": str(REPO / "SOUL.md"),
        "matrix": {
            "homeserver": homeserver,
            "user_id": bot_user,
            "password": {"file": str(secret)},
            "sync_timeout_ms": 3000,
            "trust": trust or {"policy": "tofu"},
        },
        "operators": operators,
    }
    data.update(extra)
    return parse_config(data, "test")


FleetFactory = Callable[..., Awaitable[Fleet]]


@pytest.fixture
async def fleet_factory(synapse: Any, tmp_path: Path) -> AsyncIterator[FleetFactory]:
    """Build a running bot plus clients; `trust` and extra config keys are per test."""
    made: list[Fleet] = []

    async def make(
        trust: dict[str, Any] | None = None, ops_room: bool = False, **extra: Any
    ) -> Fleet:
        """`ops_room=True`: an operators' room made the way `fleet up` makes it."""
        n = next(_counter)
        tmp = tmp_path / f"fleet{n}"
        tmp.mkdir()
        bot = await synapse.register(f"bot{n}")
        op = await synapse.register(f"op{n}")
        op2 = await synapse.register(f"optwo{n}")
        out = await synapse.register(f"outsider{n}")
        if ops_room:
            extra["operators_room"] = await ensure_operators_room(
                synapse.url, op.user_id, op.password, bot.user_id, tmp
            )
        cfg = bot_config(
            tmp, synapse.url, bot.user_id, bot.password, [op.user_id, op2.user_id], trust, **extra
        )
        runner = BotRunner(cfg)
        await runner.start()
        operator = OperatorClient(synapse.url, op.user_id, op.password, tmp / "op")
        outsider = OperatorClient(synapse.url, out.user_id, out.password, tmp / "out")
        await operator.login()
        await outsider.login()
        fleet = Fleet(cfg, runner, bot.user_id, operator, outsider, op2, tmp, synapse.url)
        made.append(fleet)
        return fleet

    try:
        yield make
    finally:
        for fleet in made:
            await fleet.operator.close()
            await fleet.outsider.close()
            await fleet.runner.stop()


@pytest.fixture
async def fleet(fleet_factory: FleetFactory) -> Fleet:
    return await fleet_factory()
