"""A burn's pause while every model provider fails: one notice when it starts, one when
work resumes, however many wolves and retries say so.

Wolves report a failing chain with a `WolfStatus` (fleetcore/bus/status.py), each at
most once per retry period; several wolves, and a bot back from a restart, see many. The
room is told once per pause. Work has resumed when a result arrives that a model wrote
(`Result.provider`) after the pause began: a result whose answer came before the outage
but was reported after it does not end the pause, and a wolf's failure from before the
resumption, arriving late, does not start a new one. Both compare the wolves' own clocks
(`WolfStatus.at`, `Result.finished_at`): wolves on skewed machines can only move a
notice by their skew.

The notices carry transaction ids numbered per pause, so a notice the homeserver already
has is not posted again; the texts name providers and a status or a failure class, never
a provider's error text (which can quote a key).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from fleetcore.bus.messages import Result
from fleetcore.bus.status import WolfState, WolfStatus


def paused_text(burn_id: str, status: WolfStatus) -> str:
    listed = ", ".join(f"{name}: {word}" for name, word in sorted(status.providers.items()))
    why = f" ({listed})" if listed else ""
    return (
        f"Burn {burn_id} paused: every model provider is failing{why}; "
        f"retrying every {status.retry_s:g} s. No task is lost or marked done meanwhile."
    )


def resumed_text(burn_id: str, provider: str) -> str:
    return f"Burn {burn_id} resumed: model provider {provider} answers again."


@dataclass
class Stall:
    """One burn's pause state and the notices still to post (txn id, text), in order."""

    burn_id: str
    paused_at: datetime | None = None
    resumed_at: datetime | None = None
    pauses: int = 0
    pending: list[tuple[str, str]] = field(default_factory=list)

    @property
    def paused(self) -> bool:
        return self.paused_at is not None

    def on_status(self, status: WolfStatus) -> bool:
        """True when `status` starts a pause (a notice is now pending)."""
        if status.state is not WolfState.MODELS_FAILING or status.burn_id != self.burn_id:
            return False
        if self.paused_at is not None:
            return False
        if self.resumed_at is not None and status.at <= self.resumed_at:
            return False  # a failure from before the resumption, arriving late
        self.paused_at = status.at
        self.pauses += 1
        self.pending.append(
            (f"{self.burn_id}-paused-{self.pauses}", paused_text(self.burn_id, status))
        )
        return True

    def on_result(self, result: Result) -> bool:
        """True when `result` ends the pause: a model answered after it began."""
        if self.paused_at is None or result.provider is None:
            return False
        if result.finished_at <= self.paused_at:
            return False
        self.paused_at = None
        self.resumed_at = result.finished_at
        self.pending.append(
            (f"{self.burn_id}-resumed-{self.pauses}", resumed_text(self.burn_id, result.provider))
        )
        return True
