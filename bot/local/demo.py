"""`fleet demo`: a scripted operator talks to the local fleet and prints what it saw.

The operator is a second end-to-end encrypted client: the transcript is what it decrypted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.testing.operator import OperatorClient

if TYPE_CHECKING:
    from bot.local.up import LocalFleet
    from bot.testing.botrunner import BotRunner

SCRIPT = ("!help", "!ping", "!status")


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


async def run_demo(fleet: LocalFleet, runner: BotRunner) -> int:
    assert fleet.synapse is not None
    op = fleet.accounts["operator"]
    bot = fleet.accounts["bot"]
    client = OperatorClient(
        fleet.synapse.url, op.user_id, op.password, fleet.state_dir / "demo-operator"
    )
    await client.login(device_name="fleet-demo")
    try:
        room = await client.create_encrypted_room("Hermes demo", [bot.user_id])
        await client.wait_joined(room, bot.user_id, timeout=60)
        print(f"Encrypted room {room}: {op.user_id} and {bot.user_id}\n")
        for command in SCRIPT:
            reply = await client.ask(room, command, timeout=60)
            print(f"{op.user_id}> {command}")
            print(f"{bot.user_id} (decrypted {reply.msgtype}):")
            print(_indent(reply.body) + "\n")
    finally:
        await client.close()
    print("demo finished: every reply above was decrypted by the operator's own client.")
    return 0
