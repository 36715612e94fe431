"""What travels on the bus: tasks, results and registry records, as typed, versioned JSON.

The bot and the wolves may run different versions during an upgrade. Each kind of message
carries its own schema `version`, and the rules that let two versions talk are:

- A reader ignores fields it does not know (a newer peer's additions), and fills fields
  that a message lacks (an older peer's) from their defaults; a kind's version goes up when
  it gains a field, and an older message is upgraded to the current shape when decoded.
- Version 1 is the first, unversioned format: a message without `version` is version 1,
  and a version-1 message is written without it. Version-1 readers refuse any field they do
  not know, so a task and an agent record (whose shapes have not changed) stay readable by
  a wolf of the first release, and a bot of this release reads a first-release wolf's
  results: upgrade the bot first, then the wolves.
- Nothing is signalled by comparing strings: an outcome, a reason and a crisis level are
  enums. A reason this version does not know reads as `Reason.UNSPECIFIED`; a crisis level
  it does not know reads as `CrisisLevel.CRISIS` (an unknown level is never taken as safe).

A message that still does not fit (not JSON, a wrong type, a missing required field, an
unknown outcome) raises `BadMessage`: the consumer terminates it and logs it rather than
acting on half of it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Self, TypeVar

import nats.errors
from nats.js.api import PubAck
from nats.js.client import JetStreamContext
from nats.js.errors import NoStreamResponseError
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from fleetcore.bus.subjects import (
    MSG_ID_HEADER,
    RESULTS_STREAM,
    TASKS_STREAM,
    agent_key,
    check_token,
    result_subject,
    task_subject,
)
from fleetcore.identity.nostr import NostrError, NostrKey, npub_decode, schnorr_verify

# The current schema version of each kind of message (see the module docstring).
TASK_VERSION = 1
RESULT_VERSION = 3  # 2: `reason` and `crisis_level`; 3: `npub` and `sig`
AGENT_RECORD_VERSION = 1

# How a version-1 wolf said "crisis": the only place this string is still read, to
# upgrade such a result to `Reason.CRISIS` when it is decoded.
V1_CRISIS_DETAIL = "crisis: the issue's text may be about someone's safety; not sent to a model"
_WIRE = "wire"  # validation context key: the data came off the bus


class Outcome(StrEnum):
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    # Triaged but handed to a person: low confidence, or a safety screen hit.
    NEEDS_HUMAN = "needs_human"


class Reason(StrEnum):
    """Why a task ended as it did; `detail` is the human-readable text that goes with it."""

    TRIAGED = "triaged"  # done: the triage comment is posted
    ALREADY_TRIAGED = "already_triaged"  # done: a redelivery found its comment
    ISSUE_CLOSED = "issue_closed"  # skipped
    ASSIGNED_ELSEWHERE = "assigned_elsewhere"  # skipped: a live wolf holds the issue
    CLAIMED_BY_OTHER = "claimed_by_other"  # skipped: another wolf won the claim
    CLAIM_LOST = "claim_lost"  # skipped: the claim went before the comment could
    CRISIS = "crisis"  # needs_human: the text may be about someone's safety
    LOW_CONFIDENCE = "low_confidence"  # needs_human
    RUBRIC_FAILED = "rubric_failed"  # failed: the model's reply did not pass the rubric
    NO_PRIVATE_PROVIDER = "no_private_provider"  # failed: sensitive, no private model
    REQUEST_REJECTED = "request_rejected"  # failed: every provider refused the request
    NOT_FOUND = "not_found"  # failed: the issue or repo is gone
    GITEA_ERROR = "gitea_error"  # failed
    GAVE_UP = "gave_up"  # failed: retried max_deliver times
    # A version-1 result (it had no reason) or a reason newer than this version.
    UNSPECIFIED = "unspecified"


class CrisisLevel(StrEnum):
    """The safety screen's level for a crisis result (the detector's `crisis`, `imminent`)."""

    CRISIS = "crisis"
    IMMINENT = "imminent"


class BadMessage(ValueError):
    """A payload that is not a well-formed message of the expected kind."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_task_id(burn_id: str, issue_number: int) -> str:
    return f"{burn_id}-{issue_number}"


def _time(value: Any) -> Any:
    # Not a number: a bare number would silently become a time in 1970.
    if isinstance(value, datetime | str):
        return value
    raise ValueError("must be an ISO 8601 time")


Time = Annotated[AwareDatetime, BeforeValidator(_time)]
Version = Annotated[StrictInt, Field(ge=1)]
Count = Annotated[StrictInt, Field(ge=0)]


def _token(what: str) -> AfterValidator:
    # check_token's ValueError becomes part of the BadMessage.
    return AfterValidator(lambda value: check_token(value, what))


def _check_repo(repo: str) -> str:
    owner, sep, name = repo.partition("/")
    if not sep or not owner or not name or "/" in name:
        raise ValueError(f"repo must be owner/name, not {repo!r}")
    return repo


BurnId = Annotated[StrictStr, _token("burn id")]
ProjectName = Annotated[StrictStr, _token("project")]
TierName = Annotated[StrictStr, _token("tier")]
Repo = Annotated[StrictStr, AfterValidator(_check_repo)]
AgentName = Annotated[StrictStr, AfterValidator(agent_key)]


PROBLEM_CHARS = 200


def _describe(kind: str, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        text = error["msg"].removeprefix("Value error, ")
        # Our own checks name their field already ("burn id 'a.b' cannot be ...").
        named = text.startswith(where.replace("_", " "))
        problem = f"{where}: {text}" if where and not named else text
        # A check that quotes the bad value must not paste a megabyte of it into the log.
        if len(problem) > PROBLEM_CHARS:
            problem = problem[: PROBLEM_CHARS - 1] + "…"
        problems.append(problem)
    return f"{kind}: " + "; ".join(problems)


class _Message(BaseModel):
    """JSON (de)serialisation shared by the messages."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: Version = 1

    @model_validator(mode="before")
    @classmethod
    def _from_the_wire(cls, data: Any, info: ValidationInfo) -> Any:
        if not (info.context or {}).get(_WIRE):
            return data
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        data = dict(data)
        data.setdefault("version", 1)
        return cls._upgrade(data)

    @classmethod
    def _upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Bring an older version's fields to the current shape (decoding only)."""
        return data

    def to_bytes(self) -> bytes:
        # Version 1 is written without `version`: a first-release reader refuses the field.
        exclude = {"version"} if self.version == 1 else None
        return self.model_dump_json(exclude=exclude).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        try:
            return cls.model_validate_json(data, context={_WIRE: True})
        except ValidationError as exc:
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                raise BadMessage(f"{cls.__name__}: not JSON") from None
            raise BadMessage(_describe(cls.__name__, exc)) from None

    @classmethod
    def build(cls, **fields: Any) -> Self:
        """Construct one, with a `BadMessage` (a sentence, not a report) if it is invalid."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            raise BadMessage(_describe(cls.__name__, exc)) from None


class Task(_Message):
    """One issue to triage. `task_id` is derived, so a re-published task deduplicates."""

    version: Version = TASK_VERSION
    task_id: StrictStr
    burn_id: BurnId
    project: ProjectName
    repo: Repo
    issue_number: StrictInt = Field(gt=0)
    tier: TierName
    created_at: Time

    @model_validator(mode="after")
    def _derived_id(self) -> Self:
        expected = make_task_id(self.burn_id, self.issue_number)
        if self.task_id != expected:
            raise ValueError(f"task_id must be {expected!r}, not {self.task_id!r}")
        return self

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
        return cls.build(
            task_id=make_task_id(burn_id, issue_number),
            burn_id=burn_id,
            project=project,
            repo=repo,
            issue_number=issue_number,
            tier=tier,
            created_at=created_at or utcnow(),
        )


class Result(_Message):
    """What a wolf did with a task; provider/model say who really wrote the comment."""

    version: Version = RESULT_VERSION
    task_id: StrictStr
    burn_id: BurnId
    project: ProjectName
    repo: Repo
    issue_number: StrictInt
    outcome: Outcome
    reason: Reason
    wolf: AgentName
    detail: StrictStr = ""
    # Set only for a crisis: how serious the safety screen judged it.
    crisis_level: CrisisLevel | None = None
    comment_url: StrictStr | None = None
    provider: StrictStr | None = None
    model: StrictStr | None = None
    finished_at: Time
    # The wolf's Nostr identity and its BIP-340 signature over the result (`sign_result`).
    npub: StrictStr | None = None
    sig: StrictStr | None = None

    @classmethod
    def _upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        if data["version"] == 1:
            # Version 1 had no reason; its one signal was the crisis detail string.
            if data.get("detail") == V1_CRISIS_DETAIL:
                data.setdefault("reason", Reason.CRISIS.value)
                data.setdefault("crisis_level", CrisisLevel.CRISIS.value)
            data.setdefault("reason", Reason.UNSPECIFIED.value)
        return data

    @field_validator("reason", mode="before")
    @classmethod
    def _known_reason(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in Reason.__members__.values():
            return Reason.UNSPECIFIED  # a newer peer's reason; `detail` still explains
        return value

    @field_validator("crisis_level", mode="before")
    @classmethod
    def _known_level(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in CrisisLevel.__members__.values():
            return CrisisLevel.CRISIS  # a newer, finer level is still a crisis
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.task_id != make_task_id(self.burn_id, self.issue_number):
            raise ValueError("task_id does not match its burn_id and issue_number")
        if self.reason is Reason.CRISIS and self.crisis_level is None:
            raise ValueError("a crisis result needs its crisis_level")
        if self.crisis_level is not None and self.outcome is not Outcome.NEEDS_HUMAN:
            raise ValueError("a crisis result's outcome is needs_human")
        return self

    @property
    def is_crisis(self) -> bool:
        """The issue may be about someone's safety: operators are alerted."""
        return self.crisis_level is not None

    @classmethod
    def for_task(
        cls,
        task: Task,
        outcome: Outcome,
        reason: Reason,
        wolf: str,
        detail: str = "",
        *,
        crisis_level: CrisisLevel | None = None,
        comment_url: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        finished_at: datetime | None = None,
    ) -> Result:
        return cls.build(
            task_id=task.task_id,
            burn_id=task.burn_id,
            project=task.project,
            repo=task.repo,
            issue_number=task.issue_number,
            outcome=outcome,
            reason=reason,
            wolf=wolf,
            detail=detail,
            crisis_level=crisis_level,
            comment_url=comment_url,
            provider=provider,
            model=model,
            finished_at=finished_at or utcnow(),
        )


# Domain separation: a result signature can never pass for a Nostr event's or anything else's.
RESULT_SIG_DOMAIN = b"hermes-fleet result signature v1\n"


def wire_digest(wire_fields: Mapping[str, Any], domain: bytes) -> bytes:
    """The 32 bytes a wolf signs: SHA-256 over the domain tag and the message's canonical JSON.

    Canonical: every field as it travels on the wire except `sig`, keys sorted, no spaces,
    UTF-8. It is computed from the wire's fields, not from a decoded message, so a field a
    newer wolf adds is signed too and an older bot still checks the signature over it.
    Each kind of message has its own `domain`: a signed result never passes for another kind.
    """
    body = {k: v for k, v in wire_fields.items() if k != "sig"}
    canonical = json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(domain + canonical.encode()).digest()


M = TypeVar("M", bound=_Message)


def result_digest(wire_fields: Mapping[str, Any]) -> bytes:
    """What a wolf signs for a result (`wire_digest` in the results' domain)."""
    return wire_digest(wire_fields, RESULT_SIG_DOMAIN)


def sign_wire(message: M, key: NostrKey, domain: bytes) -> M:
    """`message` carrying `key`'s npub and a Schnorr signature over all its other fields;
    the message has `npub` and `sig` fields."""
    unsigned = message.model_copy(update={"npub": key.npub, "sig": None})
    wire = json.loads(unsigned.to_bytes())
    sig = key.sign_schnorr(wire_digest(wire, domain)).hex()
    return unsigned.model_copy(update={"sig": sig})


def sign_result(result: Result, key: NostrKey) -> Result:
    """`result` carrying `key`'s npub and a Schnorr signature over all its other fields."""
    return sign_wire(result, key, RESULT_SIG_DOMAIN)


def check_wire_signature(data: bytes, npub: str | None, domain: bytes) -> str | None:
    """Why the wire message `data` is not signed by `npub` in `domain`, in a few words;
    None if it is.

    `npub` is the agent's key as the fleet's registry knows it (None: an unknown agent).
    The key the message names must be that one: a message cannot vouch for itself.
    """
    if npub is None:
        return "unknown agent (no npub registered)"
    try:
        wire = json.loads(data)
    except ValueError:
        return "not JSON"
    if not isinstance(wire, dict):
        return "not a JSON object"
    sig = wire.get("sig")
    if not sig:
        return "unsigned"
    if wire.get("npub") != npub:
        return "signed by another key than the agent's"
    if not isinstance(sig, str) or len(sig) != 128:
        return "malformed signature"
    try:
        pubkey = npub_decode(npub)
        raw = bytes.fromhex(sig)
    except (NostrError, ValueError):
        return "malformed signature"
    if not schnorr_verify(pubkey, wire_digest(wire, domain), raw):
        return "bad signature"
    return None


def check_result_signature(data: bytes, npub: str | None) -> str | None:
    """Why the wire result `data` is not signed by `npub`; None if it is."""
    return check_wire_signature(data, npub, RESULT_SIG_DOMAIN)


class AgentRecord(_Message):
    """A wolf's registry entry: rewritten at every heartbeat, gone when they stop."""

    version: Version = AGENT_RECORD_VERSION
    name: AgentName
    tier: TierName
    model: StrictStr
    current_task: StrictStr | None = None
    done: Count = 0
    failed: Count = 0
    skipped: Count = 0
    started_at: Time
    heartbeat_at: Time


# A PubAck that does not come leaves a task perhaps stored, perhaps not, and "no
# responders" says the stream has no leader: both happen on a cluster while a stream
# elects a leader after a node died (4-10 s measured), so a publish keeps trying that long.
PUBLISH_PATIENCE_S = 30.0
_PUBLISH_RETRY_MAX_S = 1.0


async def publish_task(js: JetStreamContext, task: Task) -> PubAck:
    """Queue a task; `ack.duplicate` is true when the same task was already queued.

    A publish whose answer does not come is sent again: the task id is the message id, so
    the stream keeps one copy whichever attempt got through.
    """
    loop = asyncio.get_running_loop()
    give_up = loop.time() + PUBLISH_PATIENCE_S
    delay = 0.1
    while True:
        try:
            return await js.publish(
                task_subject(task.tier, task.burn_id),
                task.to_bytes(),
                stream=TASKS_STREAM,
                headers={MSG_ID_HEADER: task.task_id},
            )
        except (nats.errors.TimeoutError, NoStreamResponseError):
            if loop.time() + delay > give_up:
                raise
        await asyncio.sleep(delay)  # a retry's pause, not synchronisation
        delay = min(delay * 2, _PUBLISH_RETRY_MAX_S)


async def publish_result(js: JetStreamContext, result: Result) -> PubAck:
    """Report a result; a wolf retrying after a lost PubAck cannot report it twice."""
    return await js.publish(
        result_subject(result.project, result.wolf),
        result.to_bytes(),
        stream=RESULTS_STREAM,
        headers={MSG_ID_HEADER: result.task_id},
    )
