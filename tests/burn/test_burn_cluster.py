"""The fault matrix's leader kill: a burn on a three-node JetStream cluster survives the
tasks stream's leader killed with SIGKILL mid-burn: it finishes, every issue gets one
comment, every result is reported once.

It ran by hand until the claim race behind its failures was fixed (a wolf that lost a claim
race on the very task it held reported it skipped and acked it); five runs in a row then
passed, 30-60 s each on two cores. BURN_CLUSTER_KILL=0 is the control run with no node
killed; BURN_CLUSTER_SINGLE=1 runs the same burn on one nats-server.

The burn itself is `fleettest.clusterburn.cluster_burn`, which bench/cluster.py times.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fleettest.clusterburn import cluster_burn

# The fault matrix asks for 200 issues and 4 wolves; BURN_CLUSTER_ISSUES scales it down
# on a slow machine.
ISSUES = int(os.environ.get("BURN_CLUSTER_ISSUES", "200"))
WOLVES = 4
# BURN_CLUSTER_KILL=0: the control run, no node killed.
KILL = os.environ.get("BURN_CLUSTER_KILL", "1") == "1"
# BURN_CLUSTER_SINGLE=1: the same burn on one nats-server (nothing killed).
SINGLE = os.environ.get("BURN_CLUSTER_SINGLE", "0") == "1"


@pytest.mark.timeout(420)
async def test_a_burn_survives_its_task_stream_leader_killed(tmp_path: Path) -> None:
    async with cluster_burn(tmp_path, issues=ISSUES, wolves=WOLVES, single=SINGLE) as run:
        await run.burn(kill=KILL, kill_at=0.1, timeout_s=300)
        assert run.problems() == []
        kill = run.kill
        if KILL and not SINGLE:
            assert kill is not None and kill.heir not in (None, kill.leader)
        what = (
            f"tasks stream leader {kill.leader} killed at {kill.reported} reported; "
            f"{kill.heir} leads it {kill.elected_s:.2f}s later"
            if kill is not None and kill.elected_s is not None
            else "nothing killed"
        )
        print(f"\n{ISSUES} issues, {WOLVES} wolves: {what}; burn {run.finished - run.started:.1f}s")
