"""Gitea answers 503 mid-burn: wolves back off and retry, nothing is given up or doubled.

The issue's "503 for 30 s" is an outage that lasts until the stand-in has refused a given
number of requests (every wolf has met it, more than once), then ends: the property is
the same without a wall-clock wait. The outage is shorter than the retry budget (each
task gets `bus.max_deliver` tries, the next one 10 s after a Gitea failure), so no task
may be given up.
"""

from __future__ import annotations

import pytest

from fleettest.burnrig import BurnRig
from tests.faults.conftest import (
    ISSUES,
    WOLVES,
    assert_each_issue_triaged_once,
    assert_reported_once,
    start_wolves,
)


@pytest.mark.timeout(240)
async def test_gitea_503_mid_burn_is_waited_out_without_duplicates(rig: BurnRig) -> None:
    burn_id = await rig.burn()
    await start_wolves(rig)
    quarter = ISSUES // 4
    await rig.wait_until(
        lambda: sum(bool(rig.triage_comments(n)) for n in range(1, ISSUES + 1)) >= quarter,
        timeout=120,
    )
    rig.gitea.outage(503)
    # Each wolf's client tries a request 4 times before the task goes back: this many
    # refusals mean every wolf's attempts failed a few times over.
    await rig.gitea.wait_refused(WOLVES * 2 * 4 * 2, timeout=60)
    assert rig.service is not None
    during = rig.service.store.progress(burn_id)
    assert during is not None
    gave_up = [r for r in during.results.values() if r.outcome != "done"]
    rig.gitea.end_outage()
    refused = rig.gitea.refused
    await rig.wait_finished(burn_id, timeout=180)

    assert gave_up == []
    progress = rig.service.store.progress(burn_id)
    assert progress is not None
    failed = [r for r in progress.results.values() if r.outcome != "done"]
    assert failed == [], failed
    assert len(progress.results) == ISSUES
    assert_each_issue_triaged_once(rig)
    assert_reported_once([text for _, text in rig.room.messages])
    print(f"gitea outage: {refused} requests refused with 503, {ISSUES} issues, 0 lost, 0 doubled")
