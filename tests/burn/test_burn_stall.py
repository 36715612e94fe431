"""A burn's pause notices (bot/burn/stall.py) and the wolf status that starts them
(fleetcore/bus/status.py): one notice per pause, whatever the order statuses and results
arrive in, and nothing in them but provider names and a word each."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.burn.stall import Stall
from fleetcore.bus.messages import (
    BadMessage,
    Outcome,
    Reason,
    Result,
    Task,
    check_result_signature,
    utcnow,
)
from fleetcore.bus.status import (
    WolfState,
    WolfStatus,
    check_status_signature,
    sign_status,
)
from fleetcore.identity.nostr import NostrKey

T0 = utcnow()


def _status(wolf: str = "wolf-1", at_s: float = 0.0, burn: str = "b1") -> WolfStatus:
    status = WolfStatus.models_failing(wolf, burn, {"openai": "503", "claude": "timeout"}, 30)
    return status.model_copy(update={"at": T0 + timedelta(seconds=at_s)})


def _result(at_s: float, provider: str | None = "openai", n: int = 1) -> Result:
    task = Task.new("b1", "web", "acme/web", n, "wolves")
    return Result.for_task(
        task,
        Outcome.DONE,
        Reason.TRIAGED,
        "wolf-2",
        "x",
        provider=provider,
        finished_at=T0 + timedelta(seconds=at_s),
    )


def test_many_failures_make_one_notice_and_one_answer_ends_it() -> None:
    stall = Stall("b1")
    assert stall.on_status(_status("wolf-1", 0))
    assert not stall.on_status(_status("wolf-2", 1))
    assert not stall.on_status(_status("wolf-1", 31))
    assert [txn for txn, _ in stall.pending] == ["b1-paused-1"]
    assert stall.pending[0][1] == (
        "Burn b1 paused: every model provider is failing (claude: timeout, openai: 503); "
        "retrying every 30 s. No task is lost or marked done meanwhile."
    )
    assert not stall.on_result(_result(40, provider=None))  # no model wrote it
    assert stall.on_result(_result(41))
    assert not stall.on_result(_result(42, n=2))
    assert [txn for txn, _ in stall.pending] == ["b1-paused-1", "b1-resumed-1"]
    assert stall.pending[1][1] == "Burn b1 resumed: model provider openai answers again."


def test_a_result_from_before_the_pause_does_not_end_it() -> None:
    stall = Stall("b1")
    stall.on_status(_status(at_s=10))
    assert not stall.on_result(_result(9))  # answered, then reported after the pause began
    assert stall.paused


def test_a_late_failure_from_before_the_resumption_does_not_pause_again() -> None:
    stall = Stall("b1")
    stall.on_status(_status(at_s=0))
    stall.on_result(_result(5))
    assert not stall.on_status(_status("wolf-3", at_s=4))
    assert stall.on_status(_status("wolf-3", at_s=6))  # a new outage: a new notice
    assert [txn for txn, _ in stall.pending][-1] == "b1-paused-2"


def test_a_status_names_each_provider_in_a_word_never_its_text() -> None:
    leaky = {"openai": "key rejected: 401 sk-proj-abcd", "ok.name": "401", "bad name": "503"}
    status = WolfStatus.models_failing("wolf-1", "b1", leaky, 30)
    assert status.providers == {"ok.name": "401"}
    wire = json.loads(_status().to_bytes())
    wire["providers"] = {"openai": "Incorrect API key provided: sk-proj-abcd"}
    with pytest.raises(BadMessage, match="providers"):
        WolfStatus.from_bytes(json.dumps(wire).encode())


def test_a_newer_state_is_read_as_unspecified_and_starts_no_pause() -> None:
    wire = json.loads(_status().to_bytes())
    wire["state"] = "models_on_fire"
    status = WolfStatus.from_bytes(json.dumps(wire).encode())
    assert status.state is WolfState.UNSPECIFIED
    assert not Stall("b1").on_status(status)


def test_a_status_signature_is_its_wolfs_and_passes_for_no_result() -> None:
    key = NostrKey.generate()
    data = sign_status(_status(), key).to_bytes()
    assert check_status_signature(data, key.npub) is None
    assert check_status_signature(data, NostrKey.generate().npub) is not None
    assert check_status_signature(_status().to_bytes(), key.npub) == "unsigned"
    assert check_result_signature(data, key.npub) == "bad signature"
