"""A homeserver that rate-limits the bot: every reply still arrives, in order (the sender
waits out each 429 and tries again with the same transaction id).

A Synapse of its own with a tight `rc_message` for everyone but the operator (exempted
through Synapse's admin API, as a test client that must not be the one throttled).
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from fleet.local.botrunner import BotRunner
from fleet.local.operator import OperatorClient
from fleet.local.synapse import SynapseServer
from tests.e2e.conftest import bot_config


async def login_token(server: SynapseServer, localpart: str, password: str) -> str:
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post(
            "/_matrix/client/v3/login",
            json={
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": localpart},
                "password": password,
            },
        )
        r.raise_for_status()
        return str(r.json()["access_token"])


@pytest.mark.timeout(180)
async def test_replies_survive_the_homeservers_429s(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.matrix.sender")
    server = SynapseServer(tmp_path / "synapse", rc_message={"per_second": 1, "burst_count": 2})
    await server.start()
    runner = None
    op_client = None
    try:
        admin = await server.register("admin", admin=True)
        bot = await server.register("ratebot")
        op = await server.register("rateop")
        token = await login_token(server, admin.localpart, admin.password)
        async with httpx.AsyncClient(base_url=server.url) as http:
            r = await http.post(
                f"/_synapse/admin/v1/users/{op.user_id}/override_ratelimit",
                json={"messages_per_second": 0, "burst_count": 0},
                headers={"Authorization": f"Bearer {token}"},
            )
            r.raise_for_status()
        cfg = bot_config(tmp_path, server.url, bot.user_id, bot.password, [op.user_id])
        runner = BotRunner(cfg)
        await runner.start()
        op_client = OperatorClient(server.url, op.user_id, op.password, tmp_path / "op")
        await op_client.login()
        room = await op_client.create_encrypted_room("throttled", [bot.user_id])
        await op_client.wait_joined(room, bot.user_id)
        pings = [await op_client.send_text(room, "!ping") for _ in range(10)]
        await op_client.wait_for(lambda: all(op_client.replies_to(p) for p in pings), 120)
        assert all(op_client.replies_to(p)[0].body == "pong" for p in pings)
        # In order: the room's replies left one at a time, each after the one before.
        timeline = [s.reply_to for s in op_client.seen if s.reply_to in pings]
        assert timeline == pings
        # The bot's sender reports each 429 it waited out; at least one must have happened.
        throttled = [
            r
            for r in caplog.records
            if r.name == "bot.matrix.sender" and r.getMessage() == "send_rate_limited"
        ]
        assert throttled, "the homeserver never rate-limited the bot: the test proves nothing"
    finally:
        if op_client is not None:
            await op_client.close()
        if runner is not None:
            await runner.stop()
        await server.stop()
