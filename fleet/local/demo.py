"""`fleet demo`: a scripted operator talks to the local fleet and prints what it saw.

The operator is a second end-to-end encrypted client: the transcript is what it decrypted.
After the basics it opens a project room on the sandbox forge, files an issue, shows a
forge comment arriving as a notice, and runs a burn with one wolf on the sandbox model.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from fleet.local.operator import OperatorClient, Seen

if TYPE_CHECKING:
    from fleet.local.botrunner import BotRunner
    from fleet.local.up import LocalFleet

SCRIPT = ("!help", "!ping", "!status")


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _show(who: str, command: str, bot: str, reply: Seen) -> None:
    print(f"{who}> {command}")
    print(f"{bot} (decrypted {reply.msgtype}):")
    print(_indent(reply.body) + "\n")


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
            _show(op.user_id, command, bot.user_id, reply)
        await _forge_and_burn(fleet, runner, client, room)
    finally:
        await client.close()
    print("demo finished: every reply above was decrypted by the operator's own client.")
    return 0


async def _forge_and_burn(
    fleet: LocalFleet, runner: BotRunner, client: OperatorClient, ops_room: str
) -> None:
    from agents.wolf import build_wolf
    from bot.forge.cli import install_hook
    from fleet.local.busauth import LOCAL_WOLF
    from fleet.local.up import SANDBOX_REPO
    from fleetcore.config import load_config

    assert fleet.forge is not None and runner.app is not None
    bot = fleet.accounts["bot"].user_id
    me = fleet.accounts["operator"].user_id
    repo = "/".join(SANDBOX_REPO)
    projects = runner.app.forge.projects if runner.app.forge else None
    existing = projects.get("sandbox") if projects else None
    if existing is None or existing.room_id is None:
        command = f"!project add sandbox {repo}"
        reply = await client.ask(ops_room, command, timeout=60)
        _show(me, command, bot, reply)
        m = re.search(r"room (![^ ]+)", reply.body)
        if m is None:
            raise RuntimeError(f"no project room: {reply.body}")
        room = m.group(1)
    else:
        room = existing.room_id
        print(f"Project sandbox already has its room {room} (from an earlier run)\n")
    if room not in client.client.rooms:
        await client.join(room)

    command = "!issue Search ignores accents\nSearching *café* finds nothing; *cafe* works."
    reply = await client.ask(room, command, timeout=60)
    _show(me, command, bot, reply)
    number = int(re.search(r"#(\d+)", reply.body).group(1))  # type: ignore[union-attr]

    code, text = await install_hook(runner.cfg, "sandbox")
    print(f"fleet forge hook install sandbox: {text}\n")
    if code != 0:
        raise RuntimeError(text)
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{fleet.forge.url}/api/v1/repos/{repo}/issues/{number}/comments",
            json={"body": "Same on mobile; also *naïve* vs *naive*."},
            headers={"Authorization": f"token {fleet.forge_users['alice']}"},
        )
        r.raise_for_status()
    notice = await client.wait_for(
        lambda: [s for s in client.seen if s.room_id == room and "naïve" in s.body], 60
    )
    print("alice commented on Gitea; the webhook notice in the project room:")
    print(_indent(notice[0].body) + "\n")

    # The wolf is itself: its own NKey user with an agent's rights, its own Gitea user, and
    # its Nostr key signing its results (made by `fleet up` as `fleet agent add` makes any).
    wolf_cfg = load_config(fleet.wolf_config_path)
    wolf, gitea, chain = build_wolf(wolf_cfg, LOCAL_WOLF, "wolves")
    wolf_task = asyncio.create_task(wolf.run())
    try:
        before = time.perf_counter()
        await client.send_text(room, "!burn")
        print(f"{me}> !burn")
        final = await client.wait_for(
            lambda: [
                s
                for s in client.seen
                if s.room_id == room
                and s.received_at > before
                and s.replaces
                and s.body.lstrip("* ").startswith("Burn finished")
            ],
            120,
        )
        sent = [
            s
            for s in client.seen
            if s.room_id == room
            and s.sender == bot
            and s.received_at > before
            and s.replaces is None
        ]
        print(f"{bot}: the progress message, after its last edit:")
        print(_indent(final[-1].body.lstrip("* ")) + "\n")
        for s in sent[1:]:
            print(f"{bot}: digest")
            print(_indent(s.body) + "\n")
        print(f"the burn used {len(sent)} room message(s) besides the edits\n")
        status = await client.ask(room, "!status", timeout=60)
        _show(me, "!status", bot, status)
    finally:
        wolf.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(wolf_task, 15)
        await gitea.aclose()
        await chain.aclose()


async def _demo_with_model(state_dir: Path) -> int:
    """The demo's wolf thinks with the sandbox model, which answers like a good one."""
    from fleet.local.up import with_fleet
    from fleet.sandbox.model import MODEL_ID, SandboxModel

    async with SandboxModel() as model:
        extra = {
            "model": {"default": MODEL_ID, "provider": "sandbox"},
            "fallback_providers": [
                {"provider": "sandbox", "model": MODEL_ID, "base_url": model.base_url}
            ],
        }
        return await with_fleet(state_dir, run_demo, extra)


def demo_main(state_dir: Path) -> int:
    """`fleet demo`: the local fleet, a scripted operator, then exit."""
    from fleet.local.up import run_local

    return run_local(_demo_with_model(state_dir))
