"""Burns survive crashes: a wolf killed with SIGKILL mid-task, and nats-server restarting."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from fleet.local.nats import NatsServer
from fleettest.burnrig import OWNER, REPO, BurnRig, wolf_config
from fleettest.models_fake import FakeProvider, hang

REPO_ROOT = Path(__file__).resolve().parents[2]


def assert_triaged_once(rig: BurnRig, numbers: range) -> None:
    for n in numbers:
        assert len(rig.triage_comments(n)) == 1, (n, rig.gitea.comments(OWNER, REPO, n))
        issue = rig.gitea.issue(OWNER, REPO, n)
        assert "triaged" in issue["labels"]
        assert not [lb for lb in issue["labels"] if lb.startswith("assigned:")], issue["labels"]
        assert not [c for c in issue["comments"] if "fleet-claim" in c["body"]]


@pytest.mark.timeout(120)
async def test_a_wolf_killed_mid_task_is_finished_by_another(
    own_nats: NatsServer, tmp_path: Path
) -> None:
    async with (
        BurnRig(own_nats.url, tmp_path / "bot", issues=4) as rig,
        FakeProvider("openai", hang()) as stuck,
    ):
        config = wolf_config(rig, tmp_path, stuck.base_url)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fleet.cli",
            "wolf",
            "--config",
            str(config),
            "--name",
            "wolf-k",
            "--tier",
            rig.tier,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )
        try:
            burn_id = await rig.burn()
            # The killed wolf must be in the middle of a task: its model call is pending.
            await rig.wait_until(lambda: len(stuck.requests) >= 1, timeout=30)
            claimed = [
                n
                for n in range(1, 5)
                if "assigned:wolf-k" in rig.gitea.issue(OWNER, REPO, n)["labels"]
            ]
            assert len(claimed) == 1
        finally:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        assert proc.returncode == -signal.SIGKILL
        await rig.start_wolf("wolf-2")
        await rig.wait_finished(burn_id, timeout=90)
        assert_triaged_once(rig, range(1, 5))
        by_claimed = rig.triage_comments(claimed[0])[0]
        assert "wolf-2" in by_claimed
        assert rig.gitea.violations == []


@pytest.mark.timeout(120)
async def test_a_burn_completes_across_a_nats_server_restart(
    own_nats: NatsServer, tmp_path: Path
) -> None:
    async with BurnRig(own_nats.url, tmp_path / "bot", issues=30) as rig:
        await rig.start_wolf("wolf-1", concurrency=1)
        await rig.start_wolf("wolf-2", concurrency=1)
        burn_id = await rig.burn()
        await rig.wait_until(lambda: any(rig.triage_comments(n) for n in range(1, 31)))
        await own_nats.stop()
        await own_nats.start()
        await rig.wait_finished(burn_id, timeout=90)
        assert_triaged_once(rig, range(1, 31))
        assert rig.service is not None
        assert all(rig.service.store.digested(burn_id, n) for n in range(1, 31))
        assert rig.gitea.violations == []
