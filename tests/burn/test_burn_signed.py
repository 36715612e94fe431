"""The bot's side of signed results (issue #13): on the bus, what it counts and what it refuses.

Results are put on the results stream directly, as a wolf (or someone with its bus access
but not its Nostr key) would: only the one signed by the key registered for the wolf is
counted; a tampered copy, one signed by another key and one naming an unregistered wolf
are refused with a log line each, and none of them is counted."""

from __future__ import annotations

import json
import logging

import nats
import pytest

from fleetcore.bus.messages import Outcome, Reason, Result, Task, publish_result, sign_result
from fleetcore.bus.subjects import MSG_ID_HEADER, RESULTS_STREAM, result_subject
from fleetcore.identity.nostr import NostrKey
from fleettest.burnrig import OWNER, REPO, BurnRig


async def test_only_the_result_signed_by_the_registered_key_is_counted(
    rig: BurnRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="hermes.burn")
    burn_id = await rig.burn(limit=1)  # no wolf: the one task waits in the queue
    task = Task.new(burn_id, "web", f"{OWNER}/{REPO}", 1, rig.tier)
    result = Result.for_task(task, Outcome.DONE, Reason.TRIAGED, "w1", "triaged: bug")
    key = rig.register("w1")
    genuine = sign_result(result, key).to_bytes()
    wire = json.loads(genuine)
    tampered = json.dumps({**wire, "detail": "triaged: wontfix"}).encode()
    other = sign_result(result, NostrKey.generate()).to_bytes()
    stranger = sign_result(result.model_copy(update={"wolf": "w9"}), NostrKey.generate()).to_bytes()

    nc = await nats.connect(rig.bus.servers[0])
    try:
        js = nc.jetstream()
        for n, (wolf, data) in enumerate(
            (("w1", tampered), ("w1", other), ("w1", result.to_bytes()), ("w9", stranger))
        ):
            await js.publish(
                result_subject("web", wolf),
                data,
                stream=RESULTS_STREAM,
                headers={MSG_ID_HEADER: f"forged-{n}"},  # not deduplicated against the real one
            )

        def refused() -> list[str]:
            return [
                r.fields["problem"]  # type: ignore[attr-defined]
                for r in caplog.records
                if r.getMessage() == "result_refused"
            ]

        await rig.wait_until(lambda: len(refused()) == 4)
        assert sorted(refused()) == [
            "bad signature",
            "signed by another key than the agent's",
            "unknown agent (no npub registered)",
            "unsigned",
        ]
        assert rig.service is not None
        progress = rig.service.store.progress(burn_id)
        assert progress is not None and progress.finished == 0

        await publish_result(js, Result.from_bytes(genuine))  # as the wolf sends it
        await rig.wait_finished(burn_id)
    finally:
        await nc.close()
    final = rig.room.current(rig.room.messages[0][0])
    assert "1/1" in final and "done 1" in final and "wontfix" not in final, final
