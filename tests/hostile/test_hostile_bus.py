"""The bus decoder against arbitrary bytes and JSON (issue #14): a message or a BadMessage.

A wolf or a bot that raised anything else on a malformed message would never terminate
it: JetStream would redeliver it forever. Every decoded message must also encode again.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetcore.bus.messages import (
    PROBLEM_CHARS,
    AgentRecord,
    BadMessage,
    Outcome,
    Reason,
    Result,
    Task,
)
from tests.hostile.strategies import json_values, mutated

KINDS: list[type[Task] | type[Result] | type[AgentRecord]] = [Task, Result, AgentRecord]
WHEN = datetime(2026, 11, 29, tzinfo=UTC)
TASK = Task.new("b1", "fleet", "ops/fleet", 12, "triage", created_at=WHEN)
VALID: dict[str, Any] = {
    "Task": json.loads(TASK.to_bytes()),
    "Result": json.loads(
        Result.for_task(TASK, Outcome.DONE, Reason.TRIAGED, "wolf-1", finished_at=WHEN).to_bytes()
    ),
    "AgentRecord": json.loads(
        AgentRecord(
            name="wolf-1", tier="triage", model="m", started_at=WHEN, heartbeat_at=WHEN
        ).to_bytes()
    ),
}


def decode(kind: type[Task] | type[Result] | type[AgentRecord], data: bytes) -> None:
    try:
        message = kind.from_bytes(data)
    except BadMessage as exc:
        text = str(exc)
        assert text.startswith(kind.__name__)
        # Readable in a log: each problem is cut short, whatever value it quotes.
        assert all(len(p) <= PROBLEM_CHARS + 20 for p in text.split("; "))
        return
    assert kind.from_bytes(message.to_bytes()) == message  # what decodes, encodes again


@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_are_a_message_or_bad(data: bytes) -> None:
    for kind in KINDS:
        decode(kind, data)


@given(value=json_values)
def test_arbitrary_json_is_a_message_or_bad(value: Any) -> None:
    data = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    for kind in KINDS:
        decode(kind, data)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
@given(data=st.data())
def test_mutations_of_valid_messages_are_a_message_or_bad(
    kind: type[Task] | type[Result] | type[AgentRecord], data: st.DataObject
) -> None:
    value = data.draw(mutated(VALID[kind.__name__]))
    decode(kind, json.dumps(value).encode())


@pytest.mark.parametrize("n", [1000, 100_000])
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_deep_nesting_is_bad(kind: type[Task] | type[Result] | type[AgentRecord], n: int) -> None:
    with pytest.raises(BadMessage):
        kind.from_bytes(b'{"task_id": ' + b"[" * n + b"]" * n + b"}")


def test_a_huge_bad_value_makes_a_short_error() -> None:
    value = {**VALID["Task"], "task_id": "x" * 100_000, "repo": "a/" + "b" * 100_000}
    with pytest.raises(BadMessage) as caught:
        Task.from_bytes(json.dumps(value).encode())
    assert len(str(caught.value)) < 1000


def test_the_valid_messages_decode() -> None:
    for kind in KINDS:
        decode(kind, json.dumps(VALID[kind.__name__]).encode())
        assert kind.from_bytes(json.dumps(VALID[kind.__name__]).encode())
