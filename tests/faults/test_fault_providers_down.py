"""Every model provider down: no task is lost, none is marked done, and the room is told why.

Two lengths of outage. One shorter than a task's retry budget (it lasts until the
provider has refused a given number of requests, then ends, in place of a wall-clock
"30 s"): tasks go back to the queue, nothing is marked done meanwhile, and the burn
finishes with every issue triaged once. One longer than the budget (the provider never
comes back; `max_deliver` is 2 to keep the test short): every task ends failed, not
done, with no comment on the forge, and the room's digests say why.

Either way the room is told why work stalls while it waits: one "paused" notice naming
each provider's failure (never its error text), however many wolves and retries fail,
and one "resumed" notice when a model answers again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.local.nats import NatsServer
from fleetcore.bus.config import BusConfig
from fleettest.burnrig import OWNER, REPO, BurnRig
from fleettest.models_fake import ok, status, triage_reply
from tests.faults.conftest import (
    ISSUES,
    WOLVES,
    assert_each_issue_triaged_once,
    assert_reported_once,
    digest_counts,
    start_wolves,
)


def refused(rig: BurnRig) -> int:
    return sum(1 for code, _ in rig.model.answers if code == 503)


def notices(rig: BurnRig, word: str) -> list[str]:
    return [text for _, text in rig.room.messages if text.startswith("Burn ") and word in text]


def assert_paused_once(rig: BurnRig, burn_id: str) -> None:
    paused = notices(rig, " paused: ")
    assert paused == [
        f"Burn {burn_id} paused: every model provider is failing (fake: 503); "
        "retrying every 2 s. No task is lost or marked done meanwhile."
    ], paused


def assert_resumed_once_after_the_pause(rig: BurnRig, burn_id: str) -> None:
    """Once the provider answers again: the pause told once, then one "resumed" after it."""
    assert_paused_once(rig, burn_id)
    resumed = notices(rig, " resumed: ")
    assert resumed == [f"Burn {burn_id} resumed: model provider fake answers again."], resumed
    texts = [text for _, text in rig.room.messages]
    assert texts.index(*notices(rig, " paused: ")) < texts.index(*resumed)


def assert_nothing_done_without_its_comment(rig: BurnRig, burn_id: str) -> None:
    """What the bot holds as done has its comment on the forge, and no issue without
    one is labelled triaged: the outage marked nothing done."""
    assert rig.service is not None
    progress = rig.service.store.progress(burn_id)
    assert progress is not None
    for n, line in progress.results.items():
        assert line.outcome == "done", line
        assert len(rig.triage_comments(n)) == 1, n
    for n in range(1, rig.issues + 1):
        if not rig.triage_comments(n):
            assert "triaged" not in rig.gitea.issue(OWNER, REPO, n)["labels"], n


@pytest.mark.timeout(300)
async def test_providers_down_mid_burn_then_back_lose_and_double_nothing(rig: BurnRig) -> None:
    burn_id = await rig.burn()
    await start_wolves(rig)
    await rig.wait_until(
        lambda: sum(bool(rig.triage_comments(n)) for n in range(1, ISSUES + 1)) >= ISSUES // 4,
        timeout=120,
    )
    rig.model.behave(status(503))
    await rig.wait_until(lambda: refused(rig) >= WOLVES, timeout=60)
    # Every wolf's chain fails, each task's retries too: the room hears it once.
    await rig.wait_until(lambda: notices(rig, " paused: "), timeout=60)
    await rig.wait_until(lambda: refused(rig) >= 4 * WOLVES, timeout=60)
    assert_paused_once(rig, burn_id)
    assert notices(rig, " resumed: ") == []
    assert_nothing_done_without_its_comment(rig, burn_id)
    rig.model.behave(ok(triage_reply))
    await rig.wait_finished(burn_id, timeout=240)
    assert_resumed_once_after_the_pause(rig, burn_id)

    assert rig.service is not None
    progress = rig.service.store.progress(burn_id)
    assert progress is not None and len(progress.results) == ISSUES
    failed = [r for r in progress.results.values() if r.outcome != "done"]
    assert failed == [], failed
    assert_each_issue_triaged_once(rig)
    assert_reported_once([text for _, text in rig.room.messages])
    print(f"providers down: {refused(rig)} requests refused; {ISSUES} issues, 0 lost, 0 doubled")


@pytest.mark.timeout(180)
async def test_providers_down_for_good_fail_every_task_and_the_room_says_why(
    own_nats: NatsServer, tmp_path: Path
) -> None:
    issues = 8
    bus = BusConfig(
        servers=[own_nats.url],
        ack_wait_s=3,
        heartbeat_s=0.3,
        heartbeat_ttl_s=1.5,
        reconnect_wait_s=0.2,
        max_deliver=2,
    )
    async with BurnRig(own_nats.url, tmp_path / "bot", issues=issues, bus=bus) as rig:
        rig.model.behave(status(503))
        burn_id = await rig.burn()
        await start_wolves(rig, 2)
        await rig.wait_finished(burn_id, timeout=150)
        assert rig.gitea.violations == []

        assert rig.service is not None
        progress = rig.service.store.progress(burn_id)
        assert progress is not None and sorted(progress.results) == list(range(1, issues + 1))
        for n, line in progress.results.items():
            assert line.outcome == "failed", line
            assert "no model provider could answer" in line.summary, line
            assert rig.triage_comments(n) == []
            labels = rig.gitea.issue(OWNER, REPO, n)["labels"]
            assert "triaged" not in labels and not [x for x in labels if "assigned:" in x]
        texts = [text for _, text in rig.room.messages]
        total, listed = digest_counts(texts)
        assert total == issues and set(listed) == set(range(1, issues + 1)), texts
        assert all(count == 1 for count in listed.values()), listed
        why = [ln for t in texts for ln in t.splitlines() if ln.startswith("- #")]
        assert all("failed: gave up after 2 tries: no model provider" in ln for ln in why), why
        final = rig.room.current(rig.room.messages[0][0])
        assert f"failed {issues}" in final, final
        assert_paused_once(rig, burn_id)
        assert notices(rig, " resumed: ") == []
        print(f"providers down for good: {refused(rig)} refused; room: {why[0]}")


@pytest.mark.timeout(240)
async def test_a_bot_restarted_mid_outage_tells_the_room_once(
    own_nats: NatsServer, tmp_path: Path
) -> None:
    """The bot keeps the pause in memory; restarted, it hears the wolves' next failure and
    posts the notice again under the same transaction id, which the homeserver keeps once."""
    async with BurnRig(own_nats.url, tmp_path / "bot", issues=6) as rig:
        rig.model.behave(status(503))
        burn_id = await rig.burn()
        await start_wolves(rig, 2)
        await rig.wait_until(lambda: notices(rig, " paused: "), timeout=60)
        await rig.stop_bot()
        await rig.start_bot()

        def paused_again() -> bool:
            live = rig.service._live.get(burn_id) if rig.service is not None else None
            return live is not None and live.stall.paused

        await rig.wait_until(paused_again, timeout=60)
        assert_paused_once(rig, burn_id)
        rig.model.behave(ok(triage_reply))
        await rig.wait_finished(burn_id, timeout=150)
        assert_resumed_once_after_the_pause(rig, burn_id)
        assert_each_issue_triaged_once(rig, 6)
