"""The local fleet: real servers started by the same code `fleet up` uses."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from pathlib import Path

import httpx
import nats
import pytest

from fleet.local.nats import INSTALL_HINT, NatsMissing, NatsServer
from fleet.local.synapse import SynapseServer
from fleetcore.identity.agents import agent_dir, load_facts
from fleetcore.proc import PIDFILE


async def test_synapse_registers_users_who_can_log_in(synapse: SynapseServer) -> None:
    account = await synapse.register("loginprobe")
    async with httpx.AsyncClient(base_url=synapse.url) as http:
        resp = await http.post(
            "/_matrix/client/v3/login",
            json={
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": account.localpart},
                "password": account.password,
            },
        )
    assert resp.status_code == 200, resp.text
    assert resp.json()["user_id"] == account.user_id


async def test_nats_has_jetstream_and_survives_restart(nats_server: NatsServer) -> None:
    nc = await nats.connect(nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    try:
        js = nc.jetstream()
        await js.add_stream(name="PROBE", subjects=["probe.>"])
        await js.publish("probe.a", b"kept")
        await nats_server.restart()
        info = await asyncio.wait_for(js.stream_info("PROBE"), 30)
        assert info.state.messages == 1
        await js.delete_stream("PROBE")
    finally:
        await nc.close()


def test_missing_nats_server_names_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(NatsMissing) as info:
        NatsServer(tmp_path, binary=str(tmp_path / "no-such-nats-server"))
    assert INSTALL_HINT in str(info.value)


async def test_fleet_demo_runs_end_to_end_and_reuses_its_state(tmp_path: Path) -> None:
    state = tmp_path / "fleet"

    async def demo() -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fleet.cli",
            "demo",
            "--state-dir",
            str(state),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 240)
        return proc.returncode or 0, out.decode()

    code, out = await demo()
    assert code == 0, out
    assert "> !ping" in out and "    pong" in out
    assert "Commands:" in out and "SOUL.md sha256:" in out
    # The forge and a burn: a project room, an issue, a webhook notice, one wolf's burn.
    assert "Created project sandbox for operator/sandbox" in out
    assert "Opened #4: Search ignores accents" in out
    assert "💬 alice on #4" in out
    assert "Burn finished" in out and "done 4 · failed 0" in out
    assert "wolf-1 [wolves]" in out and "nats: ok" in out and "gitea: ok" in out
    accounts = state / "accounts.json"
    assert stat.S_IMODE(accounts.stat().st_mode) == 0o600
    first = json.loads(accounts.read_text())

    code, out = await demo()
    assert code == 0, out
    assert json.loads(accounts.read_text()) == first  # same accounts, same passwords
    assert "Project sandbox already has its room" in out and "Burn finished" in out
    # The sandbox forge kept its issues, triage and hook: the next issue is #5, the burn
    # finds only it, and the hook from the first run still delivers.
    assert "Opened #5: Search ignores accents" in out
    assert "done 1 · failed 0" in out and "already delivers" in out
    ports = json.loads((state / "ports.json").read_text())
    assert f"127.0.0.1:{ports['gitea']}/operator/sandbox/issues/5" in out


async def test_fleet_up_prints_element_instructions_and_ctrl_c_stops_everything(
    tmp_path: Path,
) -> None:
    state = tmp_path / "up"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fleet.cli",
        "up",
        "--state-dir",
        str(state),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    seen: list[str] = []

    async def until_up() -> None:
        while True:
            line = (await proc.stdout.readline()).decode()  # type: ignore[union-attr]
            assert line, "fleet up exited early:\n" + "".join(seen)
            seen.append(line)
            if "Ctrl-C stops everything" in line:
                return

    await asyncio.wait_for(until_up(), 120)
    text = "".join(seen)
    assert "Homeserver" in text and "Operator user: @operator:localhost" in text
    assert "Operator password:" in text
    # One wolf made the real way (`fleet agent add`): its own keys, Gitea user, token, NATS
    # user and config, which the instructions point to.
    wolf = load_facts(state, "wolf-1")
    assert wolf is not None and wolf.gitea_user == "wolf-1" and wolf.gitea_token_id
    users = json.loads((state / "nats-users.json").read_text())
    assert {"name": "wolf-1", "nkey": wolf.nkey, "tier": wolf.tier} in users["agents"]
    assert f"fleet wolf --config {agent_dir(state, 'wolf-1') / 'config.yaml'}" in text
    assert stat.S_IMODE((state / "gitea-admin-password").stat().st_mode) == 0o600
    pids = [json.loads(p.read_text())["pid"] for p in state.rglob(PIDFILE)]
    assert len(pids) == 2  # Synapse and nats-server
    proc.send_signal(__import__("signal").SIGINT)
    assert await asyncio.wait_for(proc.wait(), 60) == 0
    for pid in pids:  # the servers are gone with it (reaped: it waited for them)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
