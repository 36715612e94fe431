"""The homeserver stops mid-burn: the burn goes on, the bot keeps its digests and posts
them, each once, when the homeserver is back.

A Synapse of the test's own (the session's is shared), stopped and started again on the
same port and database. The issue's "30 s" is the time the burn needs to finish every
issue on the forge while the homeserver is away: the outage ends on that event.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents.wolf import build_wolf
from fleet.local.nats import NatsServer
from fleet.local.operator import OperatorClient
from fleet.local.synapse import SynapseServer
from fleetcore.config import FleetConfig, parse_config
from fleettest.gitea_standin import GiteaStandin
from fleettest.models_fake import FakeProvider, ok, triage_reply
from fleettest.wait import wait_until
from tests.e2e.test_e2e_forge import registered_wolf
from tests.faults.conftest import ISSUES, WOLVES, assert_reported_once
from tests.faults.test_fault_bot_kill import OWNER, REPO, BotProcess, bot_texts, fleet_data


@pytest.fixture
async def own_synapse(tmp_path: Path) -> AsyncIterator[SynapseServer]:
    server = SynapseServer(tmp_path / "own-synapse")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.mark.timeout(420)
async def test_digests_wait_out_a_homeserver_outage_and_arrive_once(
    own_synapse: SynapseServer, own_nats: NatsServer, tmp_path: Path
) -> None:
    bot = await own_synapse.register(f"hsbot{os.getpid()}")
    op = await own_synapse.register(f"hsop{os.getpid()}")
    async with GiteaStandin() as forge, FakeProvider("openai", ok(triage_reply)) as model:
        data = fleet_data(tmp_path, own_synapse, bot, op, forge, own_nats, model)
        config = tmp_path / "fleet.yaml"
        config.write_text(yaml.safe_dump(data))
        cfg: FleetConfig = parse_config(data, "test")
        process = BotProcess(config, tmp_path / "bot.log")
        operator = OperatorClient(own_synapse.url, op.user_id, op.password, tmp_path / "op")
        await operator.login()
        wolves: list[tuple[Any, asyncio.Task[None], Any, Any]] = []
        await process.start()
        try:
            ops = await operator.create_encrypted_room("ops", [bot.user_id])
            await operator.wait_joined(ops, bot.user_id, timeout=120)
            reply = await operator.ask(ops, "!project add web acme/web", timeout=120)
            found = re.search(r"room (![^ ]+)", reply.body)
            assert found, reply.body
            room = found.group(1)
            await operator.join(room)
            for n in range(1, ISSUES + 1):
                forge.add_issue(
                    OWNER,
                    REPO,
                    f"Crash number {n} when saving a draft",
                    f"Saving draft {n} throws a TypeError in the editor.",
                )
            for i in range(1, WOLVES + 1):
                wolf, gitea, chain = build_wolf(
                    registered_wolf(cfg, f"wolf-{i}"), f"wolf-{i}", "wolves"
                )
                wolves.append((wolf, asyncio.create_task(wolf.run()), gitea, chain))

            def triaged() -> int:
                return sum(
                    any("fleet-task:" in c["body"] for c in forge.comments(OWNER, REPO, n))
                    for n in range(1, ISSUES + 1)
                )

            await operator.send_text(room, f"!burn --limit {ISSUES}")
            await operator.wait_for(lambda: triaged() >= 1, timeout=240)
            await own_synapse.stop()
            at_stop = triaged()
            # The forge signals nothing: re-checked every 0.2 s until the burn is done there.
            await wait_until(
                lambda: triaged() >= ISSUES, changed=asyncio.Event(), poll_s=0.2, timeout=240
            )
            await own_synapse.start()
            await operator.wait_for(
                lambda: [
                    s
                    for s in operator.seen
                    if s.room_id == room
                    and s.replaces
                    and s.body.lstrip("* ").startswith("Burn finished")
                ],
                timeout=240,
            )
            await operator.wait_for(
                lambda: (
                    sum(
                        int(m.group(1))
                        for t in bot_texts(operator, room, bot.user_id)
                        if (m := re.match(r"\S+: (\d+) new result", t))
                    )
                    >= ISSUES
                ),
                timeout=120,
            )
        finally:
            for wolf, task, gitea, chain in wolves:
                wolf.stop()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, 15)
                await gitea.aclose()
                await chain.aclose()
            await process.stop()
            await operator.close()
        assert forge.violations == []

    assert_reported_once(bot_texts(operator, room, bot.user_id))
    print(f"homeserver down: stopped at {at_stop}/{ISSUES} triaged, back at {ISSUES}/{ISSUES}")
