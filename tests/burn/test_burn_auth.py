"""A whole burn on a nats-server with the fleet's generated auth: the bot on its own user,
each wolf on its own agent user, added to the running server as `fleet agent add` does.

Least privilege is only worth having if the work still gets done under it: every task is
pulled, claimed, triaged, reported and acked, and the server refuses nothing on the way.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agents.wolf import Wolf
from fleet.local.nats import NatsServer, ensure_nkey_seed
from fleetcore.bus.auth import AgentUser, BusUsers, server_config
from fleetcore.bus.config import BusConfig
from fleettest.burnrig import BurnRig

ISSUES = 8


@dataclass
class AuthRig:
    rig: BurnRig
    server: NatsServer
    keys: Path
    users: BusUsers
    started: list[str] = field(default_factory=list)

    async def add_agents(self, *names: str, tier: str | None = None) -> None:
        """Let `names` on the running server, as `fleet agent add` does: by a reload."""
        for name in names:
            key = ensure_nkey_seed(self.keys / f"{name}.nk")
            self.users = self.users.with_agent(AgentUser(name, key, tier or self.rig.tier))
        await self.server.reconfigure(server_config(self.users))

    async def start_wolf(self, name: str) -> None:
        await self.rig.start_wolf(name)  # as its own user: see `wolf_bus` below
        self.started.append(name)


@pytest.fixture
async def auth_rig(tmp_path: Path) -> AsyncIterator[AuthRig]:
    keys = tmp_path / "keys"
    users = BusUsers(ensure_nkey_seed(keys / "bot.nk"))
    server = NatsServer(tmp_path / "nats", config=server_config(users))
    await server.start()
    bus = BusConfig(
        servers=[server.url],
        nkey_seed_file=keys / "bot.nk",
        ack_wait_s=3,
        heartbeat_s=0.3,
        heartbeat_ttl_s=1.5,
        reconnect_wait_s=0.2,
    )

    def wolf_bus(name: str) -> BusConfig:
        return bus.model_copy(update={"nkey_seed_file": keys / f"{name}.nk"})

    try:
        async with BurnRig(
            server.url, tmp_path / "bot", issues=ISSUES, bus=bus, wolf_bus=wolf_bus
        ) as rig:
            yield AuthRig(rig, server, keys, users)
            assert rig.gitea.violations == [], rig.gitea.violations
    finally:
        await server.stop()


async def test_a_burn_completes_with_every_wolf_on_its_own_least_privilege_user(
    auth_rig: AuthRig, caplog: pytest.LogCaptureFixture
) -> None:
    rig = auth_rig.rig
    with caplog.at_level(logging.WARNING, logger="fleetcore.bus.connect"):
        await auth_rig.add_agents("wolf-a", "wolf-b")
        for name in ("wolf-a", "wolf-b"):
            await auth_rig.start_wolf(name)
        burn_id = await rig.burn()
        await rig.wait_finished(burn_id, timeout=120)
    refused = [
        r.__dict__.get("fields", {}).get("detail", "")
        for r in caplog.records
        if r.getMessage() == "nats_error"
    ]
    assert not [d for d in refused if "violation" in str(d).lower()], refused
    for number in range(1, ISSUES + 1):
        assert len(rig.triage_comments(number)) == 1, number
    final = rig.room.current(rig.room.messages[0][0])
    assert final.startswith("Burn finished") and f"done {ISSUES}" in final, final
    # Both wolves worked, and their counts add up to the work: a task redelivered on a
    # loaded machine and found already triaged counts as skipped, not done again.
    done = {w.name: w.counts.done for w, _, _ in rig.wolves.values() if isinstance(w, Wolf)}
    assert sum(done.values()) == ISSUES and all(done.values()), done


async def test_a_wolf_whose_user_is_for_another_tier_says_so(
    auth_rig: AuthRig, caplog: pytest.LogCaptureFixture
) -> None:
    await auth_rig.add_agents("wolf-x", tier="elsewhere")

    def refusals() -> list[str]:
        return [
            str(r.__dict__.get("fields", {}).get("detail", ""))
            for r in caplog.records
            if r.getMessage() == "wolf_not_permitted"
        ]

    with caplog.at_level(logging.ERROR, logger="hermes.wolf"):
        await auth_rig.start_wolf("wolf-x")  # a wolf of the rig's tier, on that user
        await auth_rig.rig.wait_until(refusals)
    durable = f"fleet_tasks.wolves-{auth_rig.rig.tier}"
    assert any(f"consumer.info.{durable}" in d for d in refusals()), refusals()
