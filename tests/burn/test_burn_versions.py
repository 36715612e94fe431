"""Mixed versions during an upgrade: this release's bot with a first-release (version 1) wolf.

Version 1 wolves did not sign their results, and since issue #13 the bot reports only a
result signed by the Nostr key the fleet registered for its wolf: an unsigned result could
be anyone's with access to the bus. So the upgrade order is now the bot, then every wolf,
without a burn in between: a version-1 wolf still reads this bot's tasks (its reader refused
any field it did not know) and does its work, but the bot refuses, logs and never counts
what it reports. The decoder still reads a version-1 result (upgrading its crisis sentence
to a typed crisis), so the refusal is the signature's, not a parse error.
"""

from __future__ import annotations

import logging

import pytest

from fleetcore.bus.messages import (
    Outcome,
    Result,
    Task,
    check_result_signature,
)
from fleetcore.identity.nostr import NostrKey
from fleettest.burnrig import BurnRig
from fleettest.protocol_v1 import V1_CRISIS_DETAIL, encode_result_v1


def _refusals(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [
        r.fields  # type: ignore[attr-defined]
        for r in caplog.records
        if r.getMessage() == "result_refused"
    ]


def _counted(rig: BurnRig, burn_id: str) -> int:
    assert rig.service is not None
    progress = rig.service.store.progress(burn_id)
    assert progress is not None
    return progress.finished


async def test_a_version_1_wolf_works_but_its_unsigned_results_are_refused_and_logged(
    rig: BurnRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="hermes.burn")
    old = await rig.start_wolf_v1("old-wolf")
    burn_id = await rig.burn(limit=3)
    await rig.wait_until(lambda: old.reported == 3 and len(_refusals(caplog)) == 3)

    assert old.refused == []  # every task this bot queued was readable by version 1
    refused = _refusals(caplog)
    assert {r["problem"] for r in refused} == {"unsigned"}, refused
    assert {r["wolf"] for r in refused} == {"old-wolf"}
    assert _counted(rig, burn_id) == 0  # none was counted
    assert rig.alerts == []
    # No secret and no result body goes to the log line: the fields are named ones.
    assert all(set(r) == {"wolf", "task", "npub", "problem"} for r in refused)


async def test_a_signed_wolf_and_an_unsigned_one_share_a_burn_only_the_signed_count(
    rig: BurnRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="hermes.burn")
    old = await rig.start_wolf_v1("old-wolf")
    new = await rig.start_wolf("new-wolf")
    burn_id = await rig.burn(limit=8)

    def settled() -> int:
        return new.counts.done + new.counts.skipped + new.counts.failed

    await rig.wait_until(lambda: old.reported + settled() == 8, timeout=90)
    await rig.wait_until(lambda: len(_refusals(caplog)) == old.reported)
    await rig.wait_until(lambda: _counted(rig, burn_id) == settled())
    assert old.refused == []
    assert {r["wolf"] for r in _refusals(caplog)} <= {"old-wolf"}


def test_the_decoder_still_reads_a_version_1_crisis_but_it_carries_no_signature() -> None:
    task = Task.new("b1", "web", "acme/web", 7, "wolves")
    raw = encode_result_v1(task.model_dump(mode="json"), "needs_human", "old", V1_CRISIS_DETAIL)
    result = Result.from_bytes(raw)
    assert result.is_crisis and result.outcome is Outcome.NEEDS_HUMAN
    assert result.npub is None and result.sig is None
    assert check_result_signature(raw, NostrKey.generate().npub) == "unsigned"
