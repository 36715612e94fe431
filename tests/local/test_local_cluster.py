"""`fleet up --nats-cluster 3`: the fleet on a three-node JetStream cluster on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest
import yaml

from fleetcore.bus.config import BusConfig
from fleetcore.bus.connect import connect
from fleetcore.bus.subjects import AGENTS_BUCKET, TASKS_STREAM
from fleetcore.proc import PIDFILE


@pytest.mark.timeout(240)
async def test_fleet_up_with_a_nats_cluster_replicates_the_bus_on_three_nodes(
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
        "--nats-cluster",
        "3",
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

    try:
        await asyncio.wait_for(until_up(), 180)
        text = "".join(seen)
        assert "NATS cluster: 3 JetStream nodes" in text, text
        bus = BusConfig.model_validate(yaml.safe_load((state / "config.yaml").read_text())["bus"])
        assert len(bus.servers) == 3 and bus.replicas == 3
        ports = json.loads((state / "ports.json").read_text())
        assert {f"nats-n{i}" for i in (1, 2, 3)} <= ports.keys()
        assert {f"nats-n{i}-cluster" for i in (1, 2, 3)} <= ports.keys()
        pids = [json.loads(p.read_text())["pid"] for p in state.rglob(PIDFILE)]
        assert len(pids) == 4  # Synapse and three nats-servers
        # The bot made the streams at its start, with a copy on every node.
        nc = await connect(bus, "probe", first_connect_timeout_s=10)
        try:
            js = nc.jetstream()
            for stream in (TASKS_STREAM, f"KV_{AGENTS_BUCKET}"):
                info = await js.stream_info(stream)
                assert info.config.num_replicas == 3, stream
                assert info.cluster is not None and len(info.cluster.replicas or []) == 2
        finally:
            await nc.close()
    finally:
        proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), 60)
    assert code == 0
    for pid in pids:  # every node is gone with it
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
