"""A burn's progress as one message that is edited, never a message per result.

Pure: the service feeds results and a clock; this decides what the progress message and
the batched digests say, and when a digest is due.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OUTCOMES = ("done", "failed", "skipped", "needs_human")
BAR_WIDTH = 20


@dataclass(frozen=True)
class ResultLine:
    issue_number: int
    outcome: str
    summary: str
    url: str | None
    wolf: str
    provider: str


@dataclass
class BurnProgress:
    burn_id: str
    project: str
    repo_url: str
    total: int
    started_at: float
    results: dict[int, ResultLine] = field(default_factory=dict)
    stopped: bool = False
    withdrawn: int = 0
    # Results not yet shown in a digest message.
    _undigested: list[ResultLine] = field(default_factory=list)

    def add(self, line: ResultLine, *, digested: bool = False) -> bool:
        """False for a result already counted (a redelivery): it changes nothing.

        `digested`: a result restored from the store that a digest has already shown.
        """
        if line.issue_number in self.results:
            return False
        self.results[line.issue_number] = line
        if not digested:
            self._undigested.append(line)
        return True

    @property
    def undigested(self) -> list[ResultLine]:
        """Results no digest has shown yet, oldest first."""
        return list(self._undigested)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(OUTCOMES, 0)
        for r in self.results.values():
            out[r.outcome] = out.get(r.outcome, 0) + 1
        return out

    @property
    def finished(self) -> int:
        return len(self.results)

    @property
    def expected(self) -> int:
        return self.total - self.withdrawn

    @property
    def complete(self) -> bool:
        return self.finished >= self.expected

    def rate_per_min(self, now: float) -> float:
        elapsed = max(now - self.started_at, 1e-6)
        return self.finished / elapsed * 60

    def eta_s(self, now: float) -> float | None:
        if self.finished == 0:
            return None
        per_task = (now - self.started_at) / self.finished
        return max(self.expected - self.finished, 0) * per_task

    def render(self, now: float) -> str:
        c = self.counts()
        done_frac = self.finished / self.expected if self.expected else 1.0
        filled = round(done_frac * BAR_WIDTH)
        bar = "█" * filled + "░" * (BAR_WIDTH - filled)
        head = "Burn stopped" if self.stopped else ("Burn finished" if self.complete else "Burn")
        lines = [
            f"{head} {self.burn_id} on {self.project}: [{bar}] {self.finished}/{self.expected}",
            f"done {c['done']} · failed {c['failed']} · skipped {c['skipped']} · "
            f"needs human {c['needs_human']}",
        ]
        if not self.complete:
            eta = self.eta_s(now)
            eta_text = "?" if eta is None else _duration(eta)
            lines.append(f"rate {self.rate_per_min(now):.1f}/min · ETA {eta_text}")
        else:
            lines.append(f"took {_duration(now - self.started_at)}")
            lines += self._summary()
        return "\n".join(lines)

    def _summary(self) -> list[str]:
        out = []
        for outcome in ("done", "needs_human", "failed", "skipped"):
            rows = [r for r in self.results.values() if r.outcome == outcome]
            if not rows:
                continue
            refs = ", ".join(
                f"[#{r.issue_number}]({r.url})" if r.url else f"#{r.issue_number}"
                for r in sorted(rows, key=lambda r: r.issue_number)[:40]
            )
            more = f" and {len(rows) - 40} more" if len(rows) > 40 else ""
            out.append(f"{outcome.replace('_', ' ')}: {refs}{more}")
        return out

    def take_digest(self, max_lines: int = 15) -> str | None:
        """A short digest of results not yet shown, or None when there are none."""
        if not self._undigested:
            return None
        batch, self._undigested = self._undigested, []
        lines = [f"{self.project}: {len(batch)} new result(s)"]
        for r in batch[:max_lines]:
            text = r.summary.splitlines()[0][:100] if r.summary else r.outcome
            lines.append(f"- #{r.issue_number} {r.outcome}: {text}")
        if len(batch) > max_lines:
            lines.append(f"- and {len(batch) - max_lines} more")
        return "\n".join(lines)


@dataclass
class DigestClock:
    """Digests at most every `interval_s` (and one at the end): a handful per burn."""

    last: float
    interval_s: float = 30.0

    def due(self, now: float, pending: bool, final: bool) -> bool:
        return pending and (final or now - self.last >= self.interval_s)

    def mark(self, now: float) -> None:
        self.last = now


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"
