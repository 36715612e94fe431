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
from fleetcore.bus.messages import AgentRecord, BadMessage, Result, Task

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_subjects_put_tier_first_and_burn_last() -> None:
    assert subjects.task_subject("fast", "b1") == "fleet.tasks.fast.b1"
    assert subjects.tier_filter("fast") == "fleet.tasks.fast.>"
    assert subjects.burn_filter("b1") == "fleet.tasks.*.b1"
    assert subjects.tier_consumer("fast") == "wolves-fast"
    assert subjects.result_subject("hermes") == "fleet.results.hermes"
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


def test_task_round_trips_and_derives_its_id() -> None:
    task = Task.new("b1", "hermes", "fleet/hermes", 42, "fast", created_at=T0)
    assert task.task_id == "b1-42"
    assert Task.from_bytes(task.to_bytes()) == task
    assert json.loads(task.to_bytes())["created_at"] == "2026-01-02T03:04:05+00:00"


def test_result_and_record_round_trip() -> None:
    task = Task.new("b1", "hermes", "fleet/hermes", 42, "fast", created_at=T0)
    result = Result.for_task(
        task, "done", "wolf-1", "commented", "https://git/x#c1", "groq", "llama", T0
    )
    assert Result.from_bytes(result.to_bytes()) == result
    skipped = Result.for_task(task, "skipped", "wolf-1", "claimed by wolf-2", finished_at=T0)
    assert Result.from_bytes(skipped.to_bytes()).comment_url is None
    record = AgentRecord("wolf-1", "fast", "llama", None, 3, 1, 0, T0, T0)
    assert AgentRecord.from_bytes(record.to_bytes()) == record


def _task_json(**changes: object) -> bytes:
    raw = json.loads(Task.new("b1", "hermes", "fleet/hermes", 42, "fast", T0).to_bytes())
    raw.update(changes)
    return json.dumps(raw).encode()


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"task_id": "b1-42"}', "missing burn_id"),
        (_task_json(extra=1), "unknown field"),
        (_task_json(issue_number="42"), "issue_number must be an integer"),
        (_task_json(issue_number=True), "issue_number must be an integer"),
        (_task_json(issue_number=0), "must be positive"),
        (_task_json(task_id="b1-43"), "task_id must be 'b1-42'"),
        (_task_json(created_at="yesterday"), "not an ISO 8601 time"),
        (_task_json(created_at="2026-01-02T03:04:05"), "no time zone"),
        (_task_json(tier="fast.lane"), "tier"),
        (_task_json(repo="just-a-name"), "owner/name"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_malformed_tasks_raise_bad_message(payload: bytes, problem: str) -> None:
    with pytest.raises(BadMessage, match=problem):
        Task.from_bytes(payload)


def test_result_outcome_is_checked() -> None:
    task = Task.new("b1", "hermes", "fleet/hermes", 42, "fast", created_at=T0)
    raw = json.loads(Result.for_task(task, "done", "wolf-1", finished_at=T0).to_bytes())
    raw["outcome"] = "maybe"
    with pytest.raises(BadMessage, match="outcome must be one of"):
        Result.from_bytes(json.dumps(raw).encode())
    with pytest.raises(BadMessage):
        AgentRecord("wolf-1", "fast", "llama", None, -1, 0, 0, T0, T0)


def test_reconnect_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    backoff = reconnect_backoff(BusConfig(reconnect_wait_s=1, reconnect_max_wait_s=30))
    for attempt, full in [(0, 1), (1, 2), (3, 8), (10, 30), (500, 30)]:
        for _ in range(20):
            assert full / 2 <= backoff.delay(attempt) <= full
    with pytest.raises(ValidationError, match="reconnect_max_wait_s"):
        BusConfig(reconnect_wait_s=5, reconnect_max_wait_s=1)
