"""Subject names, bus config validation and message encoding: no server needed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from fleetcore.bus import subjects
from fleetcore.bus.config import BusConfig
from fleetcore.bus.connect import reconnect_backoff
from fleetcore.bus.messages import (
    AgentRecord,
    BadMessage,
    CrisisLevel,
    Outcome,
    Reason,
    Result,
    Task,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_subjects_put_tier_first_and_burn_last() -> None:
    assert subjects.task_subject("fast", "b1") == "fleet.tasks.fast.b1"
    assert subjects.tier_filter("fast") == "fleet.tasks.fast.>"
    assert subjects.burn_filter("b1") == "fleet.tasks.*.b1"
    assert subjects.tier_consumer("fast") == "wolves-fast"
    assert subjects.result_subject("hermes") == "fleet.results.hermes"
    assert subjects.result_subject("hermes", "wolf-1") == "fleet.results.hermes.wolf-1"
    assert subjects.task_subject("fast", "b1").startswith(subjects.TASKS_PREFIX + ".")


@pytest.mark.parametrize("bad", ["", "a.b", "a b", "*", "a>", "tab\there", "a/b", "new\nline"])
def test_tokens_that_would_change_a_subject_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="burn id"):
        subjects.burn_filter(bad)


def test_a_wildcard_burn_id_cannot_widen_a_purge() -> None:
    with pytest.raises(ValueError, match=r"'\*'"):
        subjects.burn_filter("*")


@pytest.mark.parametrize("bad", ["", "wolf.1", "wolf 1", "w" * 65, "wölf"])
def test_agent_names_are_strict(bad: str) -> None:
    with pytest.raises(ValueError, match="agent name"):
        subjects.agent_key(bad)


def test_bus_config_defaults() -> None:
    cfg = BusConfig()
    assert cfg.servers == ["nats://127.0.0.1:4222"]
    assert (cfg.ack_wait_s, cfg.max_deliver, cfg.duplicate_window_s) == (60, 5, 600)
    assert (cfg.heartbeat_s, cfg.heartbeat_ttl_s, cfg.reconnect_wait_s) == (3, 15, 1)
    assert cfg.nkey_seed_file is None and cfg.tls_ca_file is None and not cfg.uses_tls


def test_bus_config_accepts_tls_and_files() -> None:
    cfg = BusConfig(
        servers=["tls://nats.example:4443", "nats://10.0.0.2:4222"],
        nkey_seed_file=Path("/etc/fleet/wolf.nk"),
        tls_ca_file=Path("/etc/fleet/ca.pem"),
    )
    assert cfg.uses_tls


@pytest.mark.parametrize(
    "servers",
    [["http://127.0.0.1:4222"], ["127.0.0.1:4222"], ["nats://"], [], ["nats://u:p@host:4222"]],
)
def test_bus_config_rejects_bad_servers(servers: list[str]) -> None:
    with pytest.raises(ValidationError):
        BusConfig(servers=servers)


def test_bus_config_forbids_unknown_keys_and_bad_timings() -> None:
    with pytest.raises(ValidationError, match="extra"):
        BusConfig(nkey_seed="SU...")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="heartbeat_ttl_s must exceed heartbeat_s"):
        BusConfig(heartbeat_s=5, heartbeat_ttl_s=5)
    with pytest.raises(ValidationError):
        BusConfig(max_deliver=0)


def record(**changes: object) -> AgentRecord:
    fields: dict[str, object] = {
        "name": "wolf-1",
        "tier": "fast",
        "model": "llama",
        "done": 3,
        "failed": 1,
        "started_at": T0,
        "heartbeat_at": T0,
    }
    return AgentRecord.model_validate({**fields, **changes})


def test_task_round_trips_and_derives_its_id() -> None:
    task = Task.new("b1", "hermes", "fleet/hermes", 42, "fast", created_at=T0)
    assert task.task_id == "b1-42"
    assert Task.from_bytes(task.to_bytes()) == task
    created = datetime.fromisoformat(json.loads(task.to_bytes())["created_at"])
    assert created == T0 and created.utcoffset() is not None


def test_result_and_record_round_trip() -> None:
    task = Task.new("b1", "hermes", "fleet/hermes", 42, "fast", created_at=T0)
    result = Result.for_task(
        task,
        Outcome.DONE,
        Reason.TRIAGED,
        "wolf-1",
        "commented",
        comment_url="https://git/x#c1",
        provider="groq",
        model="llama",
        finished_at=T0,
    )
    assert Result.from_bytes(result.to_bytes()) == result
    skipped = Result.for_task(
        task, Outcome.SKIPPED, Reason.CLAIMED_BY_OTHER, "wolf-1", "claimed by wolf-2"
    )
    back = Result.from_bytes(skipped.to_bytes())
    assert back.comment_url is None and back.reason is Reason.CLAIMED_BY_OTHER
    assert AgentRecord.from_bytes(record().to_bytes()) == record()


def test_each_message_carries_its_version_and_version_1_is_unwritten() -> None:
    task = Task.new("b1", "hermes", "fleet/hermes", 42, "fast", created_at=T0)
    result = Result.for_task(task, Outcome.DONE, Reason.TRIAGED, "wolf-1", finished_at=T0)
    assert (task.version, result.version, record().version) == (1, 3, 1)  # result 3: npub and sig
    # A first-release reader refuses any field it does not know, `version` included.
    assert "version" not in json.loads(task.to_bytes())
    assert "version" not in json.loads(record().to_bytes())
    assert json.loads(result.to_bytes())["version"] == 3


def test_a_crisis_is_a_typed_field_not_a_detail_string() -> None:
    task = Task.new("b1", "hermes", "fleet/hermes", 42, "fast", created_at=T0)
    crisis = Result.for_task(
        task,
        Outcome.NEEDS_HUMAN,
        Reason.CRISIS,
        "wolf-1",
        "anything at all",
        crisis_level=CrisisLevel.IMMINENT,
    )
    back = Result.from_bytes(crisis.to_bytes())
    assert back.is_crisis and back.crisis_level is CrisisLevel.IMMINENT
    low = Result.for_task(task, Outcome.NEEDS_HUMAN, Reason.LOW_CONFIDENCE, "wolf-1", "crisis")
    assert not Result.from_bytes(low.to_bytes()).is_crisis
    with pytest.raises(BadMessage, match="needs its crisis_level"):
        Result.for_task(task, Outcome.NEEDS_HUMAN, Reason.CRISIS, "wolf-1")
    with pytest.raises(BadMessage, match="outcome is needs_human"):
        Result.for_task(
            task, Outcome.DONE, Reason.CRISIS, "wolf-1", crisis_level=CrisisLevel.CRISIS
        )


def _result_json(**changes: object) -> dict[str, object]:
    task = Task.new("b1", "hermes", "fleet/hermes", 42, "fast", created_at=T0)
    done = Result.for_task(task, Outcome.DONE, Reason.TRIAGED, "wolf-1", "ok", finished_at=T0)
    raw: dict[str, object] = json.loads(done.to_bytes())
    raw.update(changes)
    return raw


def test_a_newer_peers_result_is_read_for_what_this_version_knows() -> None:
    raw = _result_json(version=3, reason="reason_from_the_future", cost_usd=0.02, tags=["x"])
    back = Result.from_bytes(json.dumps(raw).encode())
    assert back.outcome is Outcome.DONE and back.reason is Reason.UNSPECIFIED
    assert back.detail == "ok" and back.version == 3
    # An unknown crisis level is still a crisis: operators hear about it.
    raw = _result_json(
        version=3, outcome="needs_human", reason="crisis", crisis_level="grave", detail=""
    )
    back = Result.from_bytes(json.dumps(raw).encode())
    assert back.is_crisis and back.crisis_level is CrisisLevel.CRISIS
    newer_task = json.loads(_task_json(version=2, priority="high"))
    assert Task.from_bytes(json.dumps(newer_task).encode()).issue_number == 42
    assert AgentRecord.from_bytes(json.dumps({**json.loads(record().to_bytes()), "x": 1}).encode())


def test_a_version_1_result_is_upgraded_when_read() -> None:
    v1_fields = (
        "task_id burn_id project repo issue_number outcome wolf detail comment_url "
        "provider model finished_at"
    ).split()
    plain = {k: v for k, v in _result_json().items() if k in v1_fields}
    back = Result.from_bytes(json.dumps(plain).encode())
    assert back.version == 1 and back.reason is Reason.UNSPECIFIED and not back.is_crisis
    crisis = {
        **plain,
        "outcome": "needs_human",
        "detail": "crisis: the issue's text may be about someone's safety; not sent to a model",
    }
    back = Result.from_bytes(json.dumps(crisis).encode())
    assert back.reason is Reason.CRISIS and back.crisis_level is CrisisLevel.CRISIS


def _task_json(**changes: object) -> bytes:
    raw = json.loads(Task.new("b1", "hermes", "fleet/hermes", 42, "fast", T0).to_bytes())
    raw.update(changes)
    return json.dumps(raw).encode()


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"task_id": "b1-42"}', "burn_id: Field required"),
        (_task_json(issue_number="42"), "issue_number: Input should be a valid integer"),
        (_task_json(issue_number=True), "issue_number: Input should be a valid integer"),
        (_task_json(issue_number=0), "issue_number: Input should be greater than 0"),
        (_task_json(task_id="b1-43"), "task_id must be 'b1-42'"),
        (_task_json(created_at="yesterday"), "created_at: Input should be a valid datetime"),
        (_task_json(created_at=1767323045), "created_at: must be an ISO 8601 time"),
        (_task_json(created_at="2026-01-02T03:04:05"), "created_at: Input should have timezone"),
        (_task_json(version=0), "version: Input should be greater than or equal to 1"),
        (_task_json(tier="fast.lane"), "tier"),
        (_task_json(repo="just-a-name"), "owner/name"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_malformed_tasks_raise_bad_message(payload: bytes, problem: str) -> None:
    with pytest.raises(BadMessage, match=problem):
        Task.from_bytes(payload)


def test_result_outcome_is_checked() -> None:
    # Unlike a reason, an outcome this version does not know cannot be counted: refused.
    with pytest.raises(BadMessage, match="outcome: Input should be 'done', 'failed'"):
        Result.from_bytes(json.dumps(_result_json(outcome="maybe")).encode())
    with pytest.raises(BadMessage, match="wolf"):
        Result.from_bytes(json.dumps(_result_json(wolf="wolf 1")).encode())
    with pytest.raises(BadMessage, match="done: Input should be greater than or equal to 0"):
        AgentRecord.from_bytes(json.dumps({**json.loads(record().to_bytes()), "done": -1}).encode())


def test_a_message_built_with_a_bad_name_says_why_in_a_sentence() -> None:
    with pytest.raises(BadMessage, match=r"^Task: tier 'a\.b' cannot be a NATS subject token"):
        Task.new("b1", "hermes", "fleet/hermes", 42, "a.b")


def test_reconnect_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    backoff = reconnect_backoff(BusConfig(reconnect_wait_s=1, reconnect_max_wait_s=30))
    for attempt, full in [(0, 1), (1, 2), (3, 8), (10, 30), (500, 30)]:
        for _ in range(20):
            assert full / 2 <= backoff.delay(attempt) <= full
    with pytest.raises(ValidationError, match="reconnect_max_wait_s"):
        BusConfig(reconnect_wait_s=5, reconnect_max_wait_s=1)
