"""A wolf process never loads the Matrix bot: no nio, no aiohttp.web, no `bot` package.

`fleet wolf` runs in a subprocess exactly as a user starts it, against the session's real
nats-server, until its first heartbeat is in the registry (so it has connected, made its
streams, opened its budget and started pulling tasks: everything it builds to run). Then
SIGTERM stops it cleanly, and at exit it writes the names in `sys.modules`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

from fleet.local.nats import NatsServer
from fleetcore.bus.config import BusConfig
from fleetcore.bus.connect import connect
from fleetcore.bus.streams import ensure_streams
from fleetcore.bus.subjects import AGENTS_BUCKET, agent_key

REPO = Path(__file__).resolve().parents[2]

# Runs `fleet wolf` (fleet.cli.main) and, at exit, records what it loaded.
RUN_AND_RECORD = """
import atexit, json, os, sys
def record():
    with open(os.environ["WOLF_MODULES_OUT"], "w") as out:
        json.dump(sorted(sys.modules), out)
atexit.register(record)
from fleet.cli import main
sys.exit(main(sys.argv[1:]))
"""

NEVER_IN_A_WOLF = ("nio", "aiohttp.web", "bot")


def wolf_config(tmp: Path, nats_url: str) -> Path:
    (tmp / "gitea-token").write_text("token-never-used")
    (tmp / "password").write_text("never-used")
    data: dict[str, Any] = {
        "state_dir": str(tmp / "state"),
        "soul": str(REPO / "SOUL.md"),
        "matrix": {
            "homeserver": "http://127.0.0.1:9",
            "user_id": "@bot:example.org",
            "password": {"file": str(tmp / "password")},
        },
        "operators": ["@op:example.org"],
        # Neither is called before a task arrives, and none will.
        "gitea": {"url": "http://127.0.0.1:9", "token": {"file": str(tmp / "gitea-token")}},
        "model": {"default": "fake-1", "provider": "fake"},
        "fallback_providers": [
            {"provider": "fake", "model": "fake-1", "base_url": "http://127.0.0.1:9/v1"}
        ],
        "bus": {"servers": [nats_url], "heartbeat_s": 0.5, "heartbeat_ttl_s": 5},
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def first_beat(bus: BusConfig, name: str) -> None:
    """Until the registry holds a heartbeat of `name` (watched, not polled)."""
    nc = await connect(bus, "wolf-modules-test")
    try:
        js = nc.jetstream()
        await ensure_streams(js, bus, tiers=["modules"])  # the bot's part
        kv = await js.key_value(AGENTS_BUCKET)
        watcher = await kv.watch(agent_key(name))
        try:
            while True:
                entry = await watcher.updates(timeout=120)
                if entry is not None and entry.value:
                    return
        finally:
            await watcher.stop()
    finally:
        await nc.close()


async def until_running(bus: BusConfig, name: str, proc: asyncio.subprocess.Process) -> None:
    """The first beat, or the reason there is none: the process ended."""
    beat = asyncio.create_task(first_beat(bus, name))
    ended = asyncio.create_task(proc.wait())
    done, _ = await asyncio.wait({beat, ended}, return_when=asyncio.FIRST_COMPLETED)
    if beat in done:
        ended.cancel()
        beat.result()
        return
    beat.cancel()
    err = await proc.stderr.read() if proc.stderr else b""
    raise AssertionError(f"fleet wolf exited ({proc.returncode}) before its first beat: {err!r}")


async def test_a_wolf_process_loads_no_matrix_bot(nats_server: NatsServer, tmp_path: Path) -> None:
    config = wolf_config(tmp_path, nats_server.url)
    out = tmp_path / "modules.json"
    name = f"wolf-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["WOLF_MODULES_OUT"] = str(out)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RUN_AND_RECORD,
        "wolf",
        "--name",
        name,
        "--tier",
        "modules",
        "--config",
        str(config),
        cwd=tmp_path,  # outside the checkout: the installed packages, not the tree's tests/
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await until_running(BusConfig(servers=[nats_server.url]), name, proc)
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()[-3000:]
    modules = json.loads(out.read_text())
    assert "agents.wolf" in modules and "fleetcore.bus.registry" in modules
    loaded = sorted(
        m for m in modules if any(m == p or m.startswith(p + ".") for p in NEVER_IN_A_WOLF)
    )
    assert loaded == [], f"a wolf loaded {loaded}"
    print(f"modules loaded by a wolf: {len(modules)}")
