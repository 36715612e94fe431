"""A frozen first-release (version 1) wolf, as far as the bus can see it.

The version-1 protocol had no `version` field, no reason and no crisis level: a crisis was
a `needs_human` result whose `detail` was one fixed sentence. Its reader was strict, refusing
a message with any field missing or unknown. This module keeps that wire format frozen (field
lists copied from the version-1 `fleetcore.bus.messages`) so the tests can check that a bot
of this release and a wolf of the first one still complete a burn together.

Only what crosses the bus is frozen. The wolf's work on Gitea (claims, triage, comments) is
today's `Triager`: that side of the protocol did not change between the versions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from typing import Any

from nats.aio.msg import Msg

from agents.triage import Disposition, Triager
from fleetcore.bus.config import BusConfig
from fleetcore.bus.connect import connect
from fleetcore.bus.messages import Result, Task
from fleetcore.bus.streams import ensure_streams, pull_tasks
from fleetcore.bus.subjects import AGENTS_BUCKET, MSG_ID_HEADER, RESULTS_STREAM, result_subject

V1_TASK_FIELDS = frozenset(
    {"task_id", "burn_id", "project", "repo", "issue_number", "tier", "created_at"}
)
V1_RESULT_FIELDS = (
    "task_id",
    "burn_id",
    "project",
    "repo",
    "issue_number",
    "outcome",
    "wolf",
    "detail",
    "comment_url",
    "provider",
    "model",
    "finished_at",
)
V1_OUTCOMES = frozenset({"done", "failed", "skipped", "needs_human"})
V1_CRISIS_DETAIL = "crisis: the issue's text may be about someone's safety; not sent to a model"


class V1BadMessage(ValueError):
    pass


def decode_task_v1(data: bytes) -> dict[str, Any]:
    """The version-1 reader: exactly the version-1 fields, or the task is refused."""
    raw = json.loads(data)
    if not isinstance(raw, dict):
        raise V1BadMessage("Task: expected a JSON object")
    missing = sorted(V1_TASK_FIELDS - set(raw))
    extra = sorted(set(raw) - V1_TASK_FIELDS)
    if missing:
        raise V1BadMessage(f"Task: missing {', '.join(missing)}")
    if extra:
        raise V1BadMessage(f"Task: unknown field(s) {', '.join(extra)}")
    datetime.fromisoformat(raw["created_at"])
    return raw


def encode_result_v1(
    task: dict[str, Any], outcome: str, wolf: str, detail: str, **optional: str | None
) -> bytes:
    """A result exactly as a version-1 wolf wrote it."""
    assert outcome in V1_OUTCOMES
    raw = {
        "task_id": task["task_id"],
        "burn_id": task["burn_id"],
        "project": task["project"],
        "repo": task["repo"],
        "issue_number": task["issue_number"],
        "outcome": outcome,
        "wolf": wolf,
        "detail": detail,
        "comment_url": optional.get("comment_url"),
        "provider": optional.get("provider"),
        "model": optional.get("model"),
        "finished_at": datetime.now(UTC).isoformat(),
    }
    assert tuple(raw) == V1_RESULT_FIELDS
    return json.dumps(raw, separators=(",", ":"), ensure_ascii=False).encode()


def encode_record_v1(name: str, tier: str, model: str, started_at: datetime, done: int) -> bytes:
    raw = {
        "name": name,
        "tier": tier,
        "model": model,
        "current_task": None,
        "done": done,
        "failed": 0,
        "skipped": 0,
        "started_at": started_at.isoformat(),
        "heartbeat_at": datetime.now(UTC).isoformat(),
    }
    return json.dumps(raw, separators=(",", ":")).encode()


class WolfV1:
    """Pulls its tier's tasks, reads them as version 1 does, reports in the version-1 shape."""

    def __init__(self, name: str, tier: str, bus: BusConfig, triager: Triager) -> None:
        self.name = name
        self.tier = tier
        self.bus = bus
        self.triager = triager
        self.refused: list[str] = []  # tasks its strict reader could not read
        self.reported = 0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        nc = await connect(self.bus, f"wolf-v1-{self.name}")
        try:
            js = nc.jetstream()
            await ensure_streams(js, self.bus, tiers=[self.tier])
            kv = await js.key_value(AGENTS_BUCKET)
            started = datetime.now(UTC)
            sub = await pull_tasks(js, self.tier)
            beats = asyncio.create_task(self._beat(kv, started))
            try:
                while not self._stop.is_set():
                    try:
                        msgs = await sub.fetch(1, timeout=0.5)
                    except TimeoutError:
                        continue
                    for msg in msgs:
                        await self._handle(js, msg)
            finally:
                beats.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beats
        finally:
            await nc.close()

    async def _beat(self, kv: Any, started: datetime) -> None:
        while True:
            await kv.put(
                self.name, encode_record_v1(self.name, self.tier, "fake-1", started, self.reported)
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.bus.heartbeat_s)
            if self._stop.is_set():
                return

    async def _handle(self, js: Any, msg: Msg) -> None:
        try:
            raw = decode_task_v1(msg.data)
        except (ValueError, KeyError) as exc:
            self.refused.append(str(exc))
            await msg.term()  # what a version-1 wolf did with a task it could not read
            return
        outcome = await self.triager.run(Task.model_validate(raw))
        if outcome.disposition is Disposition.RETRY:
            await msg.nak(delay=outcome.retry_after_s)
            return
        if outcome.result is not None:
            await js.publish(
                result_subject(raw["project"]),
                self._v1_result(raw, outcome.result),
                stream=RESULTS_STREAM,
                headers={MSG_ID_HEADER: raw["task_id"]},
            )
            self.reported += 1
        if outcome.disposition is Disposition.TERM:
            await msg.term()
        else:
            await msg.ack_sync()

    def _v1_result(self, task: dict[str, Any], result: Result) -> bytes:
        # Version 1 knew no reason or level: a crisis was said with its one fixed sentence.
        detail = V1_CRISIS_DETAIL if result.is_crisis else result.detail
        return encode_result_v1(
            task,
            result.outcome.value,
            self.name,
            detail,
            comment_url=result.comment_url,
            provider=result.provider,
            model=result.model,
        )
