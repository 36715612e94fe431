"""Mixed versions during an upgrade: this release's bot with a first-release (version 1) wolf.

The order the protocol supports is the bot first, then the wolves: the bot reads version-1
results (upgrading a version-1 crisis to a typed one), and its tasks stay readable by a
version-1 wolf, whose reader refused any field it did not know.
"""

from __future__ import annotations

from fleettest.burnrig import OWNER, REPO, BurnRig


def assert_triaged_once(rig: BurnRig, numbers: range) -> None:
    for n in numbers:
        assert len(rig.triage_comments(n)) == 1, (n, rig.gitea.comments(OWNER, REPO, n))
        labels = rig.gitea.issue(OWNER, REPO, n)["labels"]
        assert "triaged" in labels and not [x for x in labels if x.startswith("assigned:")]


async def test_a_version_1_wolf_and_this_bot_complete_a_burn_with_a_crisis(rig: BurnRig) -> None:
    n = rig.gitea.add_issue(
        OWNER, REPO, "cannot go on", "honestly I want to kill myself, this is my last message"
    )
    old = await rig.start_wolf_v1("old-wolf")
    burn_id = await rig.burn(limit=31)
    await rig.wait_finished(burn_id)

    assert old.refused == []  # every task this bot queued was readable by version 1
    assert old.reported == 31
    assert_triaged_once(rig, range(1, 31))
    final = rig.room.current(rig.room.messages[0][0])
    assert final.startswith("Burn finished") and "31/31" in final, final
    assert "done 30" in final and "needs human 1" in final, final
    # The version-1 crisis sentence became a typed crisis: the operators were alerted.
    assert rig.triage_comments(n) == []
    assert len(rig.alerts) == 1 and f"#{n}" in rig.alerts[0], rig.alerts
    assert "kill myself" not in rig.alerts[0]
    assert not any("kill myself" in str(r) for r in rig.model.requests)
    # Its version-1 registry record reads too.
    assert rig.service is not None
    assert "old-wolf [wolves]" in await rig.service.agents_text()


async def test_wolves_of_both_versions_share_one_burn(rig: BurnRig) -> None:
    old = await rig.start_wolf_v1("old-wolf")
    new = await rig.start_wolf("new-wolf")
    burn_id = await rig.burn()
    await rig.wait_finished(burn_id)
    assert old.refused == []
    assert old.reported + new.counts.done == 30
    assert_triaged_once(rig, range(1, 31))
    final = rig.room.current(rig.room.messages[0][0])
    assert "30/30" in final and "done 30" in final, final
