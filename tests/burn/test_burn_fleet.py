"""Burns on real nats-server, the Gitea stand-in and a fake model: wolves, claims, crashes."""

from __future__ import annotations

import pytest

from fleettest.burnrig import OWNER, REPO, BurnRig


def assert_every_issue_triaged_once(rig: BurnRig, numbers: range) -> None:
    for n in numbers:
        comments = rig.triage_comments(n)
        assert len(comments) == 1, (n, comments)
        issue = rig.gitea.issue(OWNER, REPO, n)
        # The model's reply passed the rubric before posting; the comment shows its parts.
        for part in ("Evidence", "Recommended next action", "Confidence", issue["title"]):
            assert part in comments[0], (part, comments[0])
        assert "triaged" in issue["labels"], (n, issue["labels"])
        assert not [lb for lb in issue["labels"] if lb.startswith("assigned:")], issue["labels"]
        assert not [c for c in issue["comments"] if "fleet-claim" in c["body"]]


async def test_a_burn_of_30_issues_with_3_wolves(rig: BurnRig) -> None:
    for name in ("wolf-1", "wolf-2", "wolf-3"):
        await rig.start_wolf(name)
    burn_id = await rig.burn()
    await rig.wait_finished(burn_id)
    assert_every_issue_triaged_once(rig, range(1, 31))
    progress_event = rig.room.messages[0][0]
    final = rig.room.current(progress_event)
    assert final.startswith("Burn finished"), final
    assert "30/30" in final and "done 30" in final
    assert len(rig.room.messages) <= 5, rig.room.messages
    counts = {w.name: w.counts.done for w, _, _ in rig.wolves.values()}
    assert sum(counts.values()) == 30


async def test_two_wolves_racing_for_one_issue_comment_once(rig: BurnRig) -> None:
    from agents.triage import Disposition
    from fleetcore.bus.messages import Result, Task

    task = Task.new("race1", "web", f"{OWNER}/{REPO}", 7, rig.tier)
    import asyncio

    # Two wolves' triagers, each seeing the other alive (as two running wolves do), so
    # neither takes the other's claim for a dead wolf's.
    clients = [rig.client(), rig.client()]
    a, b = (rig.triager(name, c) for name, c in zip(("racer-a", "racer-b"), clients, strict=True))
    try:
        out_a, out_b = await asyncio.gather(a.run(task), b.run(task))
    finally:
        for client in clients:
            await client.aclose()
    # The winner finishes and acks; the loser, whichever way it learns of the winner's claim
    # on this very task, puts the task back without a result: a "skipped" would be the
    # result the room sees, and its ack would end the task if the winner then failed.
    won, lost = sorted((out_a, out_b), key=lambda o: o.result is None)
    assert isinstance(won.result, Result) and won.result.outcome == "done", (out_a, out_b)
    assert won.disposition is Disposition.ACK
    assert lost.result is None and lost.disposition is Disposition.RETRY, (out_a, out_b)
    assert len(rig.triage_comments(7)) == 1
    assert_every_issue_triaged_once(rig, range(7, 8))


@pytest.mark.timeout(120)
async def test_restarting_the_bot_mid_burn_reports_every_result_once(rig: BurnRig) -> None:
    await rig.start_wolf("wolf-1", concurrency=1)
    burn_id = await rig.burn()
    await rig.wait_until(
        lambda: 3 <= len(rig.gitea.requests) and any(rig.triage_comments(n) for n in range(1, 31))
    )
    await rig.stop_bot()
    await rig.start_bot()
    await rig.start_wolf("wolf-2")
    await rig.wait_finished(burn_id, timeout=90)
    assert_every_issue_triaged_once(rig, range(1, 31))
    # Digests say "web: N new result(s)"; over the burn they must add up to exactly 30.
    digests = [text for _, text in rig.room.messages if "new result(s)" in text]
    assert sum(int(d.split()[1]) for d in digests) == 30, digests
    assert rig.service is not None
    assert all(rig.service.store.digested(burn_id, n) for n in range(1, 31))


async def test_burn_stop_withdraws_queued_tasks_and_status_tells(rig: BurnRig) -> None:
    burn_id = await rig.burn()  # no wolf yet: every task waits in the queue
    assert rig.service is not None
    from bot.burn.service import BurnError

    with pytest.raises(BurnError, match=f"Burn {burn_id} is still running here"):
        await rig.burn()
    assert "0/30" in rig.service.status(rig.project.room_id or "")
    assert "queue: wolves 30" in await rig.service.status_text()
    text = await rig.service.stop(rig.project.room_id or "")
    assert "withdrew 30 queued task(s)" in text
    await rig.wait_finished(burn_id)
    await rig.start_wolf("wolf-1")  # nothing left for it
    assert "queue: wolves 0" in await rig.service.status_text()
    progress_event = rig.room.messages[0][0]
    assert rig.room.current(progress_event).startswith("Burn stopped")
    assert all(rig.triage_comments(n) == [] for n in range(1, 31))
    assert "No burn is running" in await rig.service.stop(rig.project.room_id or "")


async def test_a_crisis_issue_in_a_burn_alerts_operators_and_reaches_no_model(
    rig: BurnRig,
) -> None:
    n = rig.gitea.add_issue(
        OWNER, REPO, "cannot go on", "honestly I want to kill myself, this is my last message"
    )
    await rig.start_wolf("wolf-1")
    burn_id = await rig.burn(limit=31)
    await rig.wait_finished(burn_id)
    assert rig.triage_comments(n) == []
    assert "needs-human" in rig.gitea.issue(OWNER, REPO, n)["labels"]
    assert not any("kill myself" in str(r) for r in rig.model.requests)
    assert len(rig.alerts) == 1 and f"#{n}" in rig.alerts[0]
    assert "kill myself" not in rig.alerts[0]
    everything = "\n".join(t for _, t in rig.room.messages) + str(rig.room.edits)
    assert "kill myself" not in everything


async def test_a_burn_recorded_but_never_queued_is_queued_on_restart(rig: BurnRig) -> None:
    """A crash between storing a burn and publishing its tasks must not strand it."""
    import time as _time

    from bot.burn.store import BurnRow

    assert rig.service is not None
    row = BurnRow(
        "bcrash1",
        "web",
        rig.project.room_id or "",
        f"{rig.gitea.url}/acme/web",
        rig.tier,
        5,
        _time.time(),
        None,
        False,
        0,
        None,
    )
    rig.service.store.create(row, [1, 2, 3, 4, 5])  # ... and the bot died right here
    await rig.stop_bot()
    await rig.start_bot()
    await rig.start_wolf("wolf-1")
    await rig.wait_finished("bcrash1")
    assert_every_issue_triaged_once(rig, range(1, 6))
