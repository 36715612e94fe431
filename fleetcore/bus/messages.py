"""What travels on the bus: tasks, results and registry records, as strict JSON.

The bot and the wolves may run different versions during an upgrade, so decoding is strict:
a message that does not match exactly raises `BadMessage` (the consumer terminates it and
logs) rather than being half-understood and acted on.
"""

from __future__ import annotations

import dataclasses
import json
import types
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Self, Union, get_args, get_origin, get_type_hints

from nats.js.api import PubAck
from nats.js.client import JetStreamContext

from fleetcore.bus.subjects import (
    MSG_ID_HEADER,
    RESULTS_STREAM,
    TASKS_STREAM,
    agent_key,
    check_token,
    result_subject,
    task_subject,
)

# needs_human: triaged but handed to a person (low confidence or a safety screen hit).
Outcome = Literal["done", "failed", "skipped", "needs_human"]

CRISIS_DETAIL = "crisis: the issue's text may be about someone's safety; not sent to a model"


class BadMessage(ValueError):
    """A payload that is not a well-formed message of the expected kind."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def _check_field(kind: str, name: str, value: Any, tp: Any) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        (inner,) = [t for t in options if t is not type(None)]
        return _check_field(kind, name, value, inner)
    if origin is Literal:
        if value not in get_args(tp):
            allowed = ", ".join(repr(a) for a in get_args(tp))
            raise BadMessage(f"{kind}.{name} must be one of {allowed}, not {value!r}")
        return value
    if tp is datetime:
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                raise BadMessage(f"{kind}.{name} is not an ISO 8601 time: {value!r}") from None
        else:
            raise BadMessage(f"{kind}.{name} must be a time, not {type(value).__name__}")
        if parsed.tzinfo is None:
            raise BadMessage(f"{kind}.{name} has no time zone")
        return parsed
    if tp is int:
        # bool is an int in Python but never a count or an issue number here.
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadMessage(f"{kind}.{name} must be an integer, not {type(value).__name__}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise BadMessage(f"{kind}.{name} must be a string, not {type(value).__name__}")
        return value
    raise TypeError(f"unsupported field type {tp!r}")  # a programming error, not bad input


class _Message:
    """JSON (de)serialisation shared by the message dataclasses."""

    def _validate(self) -> None:
        kind = type(self).__name__
        for name, tp in get_type_hints(type(self)).items():
            value = _check_field(kind, name, getattr(self, name), tp)
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, datetime) else value
        return out

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        kind = cls.__name__
        try:
            raw = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadMessage(f"{kind}: not JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise BadMessage(f"{kind}: expected a JSON object, got {type(raw).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        missing = [n for n in names if n not in raw]
        extra = sorted(set(raw) - set(names))
        if missing:
            raise BadMessage(f"{kind}: missing {', '.join(missing)}")
        if extra:
            raise BadMessage(f"{kind}: unknown field(s) {', '.join(extra)}")
        try:
            return cls(**raw)
        except BadMessage:
            raise
        except ValueError as exc:
            raise BadMessage(f"{kind}: {exc}") from None


def _tokens(**values: str) -> None:
    for what, value in values.items():
        try:
            check_token(value, what.replace("_", " "))
        except ValueError as exc:
            raise BadMessage(str(exc)) from None


def _agent(name: str) -> None:
    try:
        agent_key(name)
    except ValueError as exc:
        raise BadMessage(str(exc)) from None


def _repo(repo: str) -> None:
    owner, sep, name = repo.partition("/")
    if not sep or not owner or not name or "/" in name:
        raise BadMessage(f"repo must be owner/name, not {repo!r}")


@dataclass(frozen=True)
class Task(_Message):
    """One issue to triage. `task_id` is derived, so a re-published task deduplicates."""

    task_id: str
    burn_id: str
    project: str
    repo: str
    issue_number: int
    tier: str
    created_at: datetime

    def __post_init__(self) -> None:
        self._validate()
        _tokens(burn_id=self.burn_id, project=self.project, tier=self.tier)
        _repo(self.repo)
        if self.issue_number <= 0:
            raise BadMessage("Task.issue_number must be positive")
        if self.task_id != make_task_id(self.burn_id, self.issue_number):
            raise BadMessage(
                f"Task.task_id must be {make_task_id(self.burn_id, self.issue_number)!r}, "
                f"not {self.task_id!r}"
            )

    @classmethod
    def new(
        cls,
        burn_id: str,
        project: str,
        repo: str,
        issue_number: int,
        tier: str,
        created_at: datetime | None = None,
    ) -> Task:
        return cls(
            task_id=make_task_id(burn_id, issue_number),
            burn_id=burn_id,
            project=project,
            repo=repo,
            issue_number=issue_number,
            tier=tier,
            created_at=created_at or utcnow(),
        )


def make_task_id(burn_id: str, issue_number: int) -> str:
    return f"{burn_id}-{issue_number}"


@dataclass(frozen=True)
class Result(_Message):
    """What a wolf did with a task; provider/model say who really wrote the comment."""

    task_id: str
    burn_id: str
    project: str
    repo: str
    issue_number: int
    outcome: Outcome
    wolf: str
    detail: str
    comment_url: str | None
    provider: str | None
    model: str | None
    finished_at: datetime

    def __post_init__(self) -> None:
        self._validate()
        _tokens(burn_id=self.burn_id, project=self.project)
        _repo(self.repo)
        _agent(self.wolf)
        if self.task_id != make_task_id(self.burn_id, self.issue_number):
            raise BadMessage("Result.task_id does not match its burn_id and issue_number")

    @classmethod
    def for_task(
        cls,
        task: Task,
        outcome: Outcome,
        wolf: str,
        detail: str = "",
        comment_url: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        finished_at: datetime | None = None,
    ) -> Result:
        return cls(
            task_id=task.task_id,
            burn_id=task.burn_id,
            project=task.project,
            repo=task.repo,
            issue_number=task.issue_number,
            outcome=outcome,
            wolf=wolf,
            detail=detail,
            comment_url=comment_url,
            provider=provider,
            model=model,
            finished_at=finished_at or utcnow(),
        )


@dataclass(frozen=True)
class AgentRecord(_Message):
    """A wolf's registry entry: rewritten at every heartbeat, gone when they stop."""

    name: str
    tier: str
    model: str
    current_task: str | None
    done: int
    failed: int
    skipped: int
    started_at: datetime
    heartbeat_at: datetime

    def __post_init__(self) -> None:
        self._validate()
        _agent(self.name)
        _tokens(tier=self.tier)
        if min(self.done, self.failed, self.skipped) < 0:
            raise BadMessage("AgentRecord counters cannot be negative")


async def publish_task(js: JetStreamContext, task: Task) -> PubAck:
    """Queue a task; `ack.duplicate` is true when the same task was already queued."""
    return await js.publish(
        task_subject(task.tier, task.burn_id),
        task.to_bytes(),
        stream=TASKS_STREAM,
        headers={MSG_ID_HEADER: task.task_id},
    )


async def publish_result(js: JetStreamContext, result: Result) -> PubAck:
    """Report a result; a wolf retrying after a lost PubAck cannot report it twice."""
    return await js.publish(
        result_subject(result.project),
        result.to_bytes(),
        stream=RESULTS_STREAM,
        headers={MSG_ID_HEADER: result.task_id},
    )
