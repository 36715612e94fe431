"""A wolf frozen with SIGSTOP while it holds a task: its claim expires, another wolf
finishes the issue, and when the frozen wolf wakes with a good answer it posts nothing.

SIGSTOP, unlike SIGKILL, leaves the process and its sockets alive: nats-server and the
registry only learn it is gone from its silence (heartbeat TTL, ack wait).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from fleettest.burnrig import OWNER, REPO, BurnRig, wolf_config
from fleettest.models_fake import FakeProvider, hang, triage_reply
from tests.faults.conftest import (
    ISSUES,
    WOLVES,
    assert_each_issue_triaged_once,
    assert_reported_once,
    start_wolves,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(240)
async def test_a_frozen_wolfs_claim_expires_and_another_wolf_finishes(
    rig: BurnRig, tmp_path: Path
) -> None:
    async with FakeProvider("openai", hang(triage_reply)) as stuck:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fleet.cli",
            "wolf",
            "--config",
            str(wolf_config(rig, tmp_path, stuck.base_url, provider="frozen")),
            "--name",
            "wolf-frozen",
            "--tier",
            rig.tier,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )
        try:
            burn_id = await rig.burn()
            await stuck.wait_requests(1, timeout=60)  # it holds a task, its model call pending
            held = [
                n
                for n in range(1, ISSUES + 1)
                if "assigned:wolf-frozen" in rig.gitea.issue(OWNER, REPO, n)["labels"]
            ]
            assert len(held) == 1, held
            proc.send_signal(signal.SIGSTOP)
            await start_wolves(rig, WOLVES - 1)
            await rig.wait_finished(burn_id, timeout=180)
            assert_each_issue_triaged_once(rig)
            finisher = rig.triage_comments(held[0])[0]
            assert "wolf-frozen" not in finisher

            # Awake again, with a good answer to the question it asked before it froze.
            proc.send_signal(signal.SIGCONT)
            stuck.release()
            proc.send_signal(signal.SIGTERM)  # it finishes what it holds, then exits
            assert await asyncio.wait_for(proc.wait(), 60) == 0
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                await proc.wait()
    # Awake, its model call had outlived its HTTP timeout: it asked again, got a good
    # answer, and found its claim gone (claim lost), so it wrote nothing.
    assert len(stuck.requests) >= 1
    assert_each_issue_triaged_once(rig)
    assert_reported_once([text for _, text in rig.room.messages])
    assert rig.service is not None
    progress = rig.service.store.progress(burn_id)
    assert progress is not None and len(progress.results) == ISSUES
    assert progress.results[held[0]].wolf != "wolf-frozen"
    print(f"frozen wolf: issue #{held[0]} finished by another; {ISSUES} issues, 0 lost, 0 doubled")
