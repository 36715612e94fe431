"""One task, start to finish: claim the issue, triage it through the chain, comment, release.

The order of writes is what makes a crash harmless. The triage comment carries the task
id, so a redelivered task that finds it finishes the bookkeeping instead of commenting
again; the claim is re-checked before every write; the result goes out (and the task is
acked by the caller) only after Gitea holds everything. No I/O here besides the Gitea
client and the `complete` function handed in, so this runs the same in a wolf process,
a test, or the benchmark.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from agents.claim import (
    claim_comment_body,
    decide_after_claim,
    decide_before_claim,
    parse_claim,
    still_mine,
)
from agents.rubric import RUBRIC_INSTRUCTIONS, check_triage, find_task_marker, format_comment
from agents.rubric import repair_prompt as rubric_repair_prompt
from fleetcore.bus.messages import CrisisLevel, Outcome, Reason, Result, Task
from fleetcore.forge.client import GiteaClient, GiteaError, GiteaUnavailable, NotFound
from fleetcore.forge.models import Comment, Issue
from fleetcore.models.chain import (
    ChainError,
    ChainExhausted,
    Completion,
    NoPrivateProvider,
    RequestRejected,
)
from fleetcore.safety import Level, screen

log = logging.getLogger("hermes.wolf")

TRIAGED = "triaged"
NEEDS_HUMAN = "needs-human"
Complete = Callable[[list[dict[str, str]], bool], Awaitable[Completion]]
Alive = Callable[[str], Awaitable[bool]]
StartedAt = Callable[[str], Awaitable[datetime | None]]
# Whether a wolf's last heartbeat says it is working on a task (wolf, task id).
WorkingOn = Callable[[str, str], Awaitable[bool]]
# Makes "I am working on this task" readable by every other wolf's `WorkingOn` (a heartbeat
# written at once and acknowledged), before the claim comment that it vouches for exists.
Announce = Callable[[Task], Awaitable[None]]
# Gitea's clock and a wolf's may differ a little; a claim this much older than the wolf's
# start still counts as the current run's.
CLOCK_SKEW = timedelta(seconds=5)
# What a crisis result says: never the text itself, which must reach no model and no room.
CRISIS_DETAIL = "the issue's text may be about someone's safety; not sent to a model"


class Disposition(Enum):
    ACK = "ack"  # finished (done, skipped, needs a human, or failed for good)
    RETRY = "retry"  # put back with a delay: rate-limited or a dependency is down
    TERM = "term"  # can never succeed: stop redelivering


@dataclass(frozen=True)
class TaskOutcome:
    disposition: Disposition
    result: Result | None
    retry_after_s: float = 0.0
    reason: str = ""
    # Set when the whole model chain failed: each provider's failure in a word (a status
    # or a class, never the provider's text), for the wolf to tell the burn's room.
    models_failing: dict[str, str] | None = None


def assigned_label(wolf: str) -> str:
    return f"assigned:{wolf}"


def _is_fleet_comment(c: Comment) -> bool:
    return parse_claim(c.body) is not None or find_task_marker(c.body) is not None


def issue_sources(issue: Issue, comments: list[Comment]) -> list[str]:
    """What the evidence may quote: the issue and people's comments, not the fleet's own."""
    return [issue.title, issue.body, *(c.body for c in comments if not _is_fleet_comment(c))]


def triage_prompt(repo: str, issue: Issue, comments: list[Comment]) -> str:
    people = [c for c in comments if not _is_fleet_comment(c)]
    parts = [
        f"Triage this issue from the Gitea repository {repo}.",
        "",
        f"Title: {issue.title}",
        "Labels: "
        + (", ".join(n for n in issue.label_names if not n.startswith("assigned:")) or "none"),
        "",
        "Body:",
        issue.body or "(empty)",
    ]
    if people:
        parts += ["", "Comments:"] + [f"- {c.user}: {c.body}" for c in people]
    parts += ["", RUBRIC_INSTRUCTIONS]
    return "\n".join(parts)


def crisis_level(texts: list[str]) -> CrisisLevel | None:
    """The most serious crisis level the safety screen finds in any of `texts`, if any."""
    found = [v.level for v in (screen(t) for t in texts if t) if v.is_crisis]
    if not found:
        return None
    worst = max(found, key=lambda level: level.rank)
    return CrisisLevel.IMMINENT if worst is Level.imminent else CrisisLevel.CRISIS


class CommentBudget:
    """Comments allowed per hour; `None` means go ahead, a number is seconds to wait."""

    async def peek(self) -> float | None:  # pragma: no cover - interface
        raise NotImplementedError

    async def take(self) -> float | None:  # pragma: no cover - interface
        raise NotImplementedError


class Triager:
    def __init__(
        self,
        wolf: str,
        gitea: GiteaClient,
        complete: Complete,
        alive: Alive,
        budget: CommentBudget | None = None,
        sensitive: Callable[[Task], Awaitable[bool]] | None = None,
        stale_after_s: float = 15.0,
        started_at: StartedAt | None = None,
        working_on: WorkingOn | None = None,
        announce: Announce | None = None,
        models_retry_s: float = 30.0,
    ) -> None:
        self.stale_after_s = stale_after_s
        # When no model provider could answer, the task goes back for this long: the chain
        # has already tried every provider, so an immediate retry would only fail again.
        self.models_retry_s = models_retry_s
        # With `working_on`, a claim whose wolf's heartbeat does not name the task counts as
        # abandoned. Heartbeats are periodic, so without `announce` a fresh claim looks
        # abandoned until the next beat: two wolves handed the same task would each take
        # the other's claim for abandoned, both win, and both comment.
        self.announce = announce
        # A live wolf's claim on a task it no longer works on (it put the task back, say
        # when Gitea failed under it and the claim could not be removed) is abandoned.
        self.working_on = working_on
        # When a live wolf's current run began: its claims from an earlier run are stale.
        self.started_at = started_at
        self.wolf = wolf
        self.gitea = gitea
        self.complete = complete
        self.alive = alive
        self.budget = budget
        self.sensitive = sensitive

    def _result(
        self,
        task: Task,
        outcome: Outcome,
        reason: Reason,
        detail: str = "",
        *,
        crisis_level: CrisisLevel | None = None,
        comment_url: str | None = None,
        provider: str | None = None,
        model: str | None = None,
    ) -> Result:
        return Result.for_task(
            task,
            outcome,
            reason,
            self.wolf,
            detail,
            crisis_level=crisis_level,
            comment_url=comment_url,
            provider=provider,
            model=model,
        )

    async def run(self, task: Task) -> TaskOutcome:
        try:
            return await self._run(task)
        except NotFound as exc:
            failed = self._result(task, Outcome.FAILED, Reason.NOT_FOUND, str(exc))
            return TaskOutcome(Disposition.TERM, failed)
        except GiteaUnavailable as exc:
            return TaskOutcome(Disposition.RETRY, None, 10.0, f"gitea: {exc}")
        except GiteaError as exc:
            failed = self._result(task, Outcome.FAILED, Reason.GITEA_ERROR, f"gitea: {exc}")
            return TaskOutcome(Disposition.TERM, failed)

    async def _alive_set(
        self, names: set[str], comments: list[Comment] | None = None, task: Task | None = None
    ) -> set[str]:
        """Wolves whose claims count: alive, and (if we can tell) claimed in this life.

        A wolf restarted under the same name is alive again, but a claim it made before the
        restart is abandoned work; left counted, it would block the issue for good. So is
        the claim of a live wolf on `task` when it is not working on that task any more:
        this delivery is ours, JetStream gave it up only because that wolf put it back,
        and waiting for its heartbeat to lapse would spend every retry of the task.
        """
        live: set[str] = set()
        for name in names:
            if name == self.wolf:
                live.add(name)
                continue
            if await self._abandoned(name, comments, task):
                continue
            if self.started_at is None or comments is None:
                if await self.alive(name):
                    live.add(name)
                continue
            started = await self.started_at(name)
            if started is None:
                continue
            times = [
                c.created_at
                for c in comments
                if c.created_at is not None
                and (claim := parse_claim(c.body)) is not None
                and claim.wolf == name
            ]
            if times and max(times) < started - CLOCK_SKEW:
                continue  # every claim it holds here predates its current run
            live.add(name)
        return live

    async def _abandoned(
        self, name: str, comments: list[Comment] | None, task: Task | None
    ) -> bool:
        """`name`'s claims on this issue are all for `task`, which it is not working on."""
        if self.working_on is None or comments is None or task is None:
            return False
        tasks = {
            claim.task_id
            for c in comments
            if (claim := parse_claim(c.body)) is not None and claim.wolf == name
        }
        return tasks == {task.task_id} and not await self.working_on(name, task.task_id)

    async def _run(self, task: Task) -> TaskOutcome:
        owner, repo = task.repo.split("/", 1)
        g = self.gitea
        issue = await g.get_issue(owner, repo, task.issue_number)
        comments = await g.list_comments(owner, repo, task.issue_number)
        done = next((c for c in comments if find_task_marker(c.body) == task.task_id), None)
        if done is not None:
            # A redelivery after a crash: the comment exists, finish the bookkeeping only.
            await self._finish(task, comments)
            return TaskOutcome(
                Disposition.ACK,
                self._result(
                    task,
                    Outcome.DONE,
                    Reason.ALREADY_TRIAGED,
                    "already triaged",
                    comment_url=done.html_url,
                ),
            )
        if issue.state != "open":
            closed = self._result(task, Outcome.SKIPPED, Reason.ISSUE_CLOSED, "issue is closed")
            return TaskOutcome(Disposition.ACK, closed)

        others_on_task = {
            c.wolf
            for c in (parse_claim(x.body) for x in comments)
            if c is not None and c.task_id == task.task_id and c.wolf != self.wolf
        }
        if await self._alive_set(others_on_task, comments, task) - {self.wolf}:
            # Redelivered while its first wolf still looks alive: it stalled or just died.
            # Come back when its heartbeat has had time to expire, rather than skip it.
            return TaskOutcome(Disposition.RETRY, None, self.stale_after_s, "claim holder alive")
        holders = {n.split(":", 1)[1] for n in issue.label_names if n.startswith("assigned:")}
        live = await self._alive_set(holders, comments, task)
        pre = decide_before_claim(self.wolf, issue.label_names, live)
        if not pre.proceed:
            held = self._result(task, Outcome.SKIPPED, Reason.ASSIGNED_ELSEWHERE, pre.reason)
            return TaskOutcome(Disposition.ACK, held)

        sources = issue_sources(issue, comments)
        level = crisis_level(sources)
        if level is not None:
            await g.add_labels(owner, repo, task.issue_number, [NEEDS_HUMAN])
            crisis = self._result(
                task, Outcome.NEEDS_HUMAN, Reason.CRISIS, CRISIS_DETAIL, crisis_level=level
            )
            return TaskOutcome(Disposition.ACK, crisis)

        if self.announce is not None:
            # Before the claim is visible: whoever sees the claim then reads that we work on
            # the task, so it cannot mistake our live claim for an abandoned one.
            await self.announce(task)
        claim = await g.create_comment(
            owner, repo, task.issue_number, claim_comment_body(self.wolf, task.task_id)
        )
        await g.add_labels(owner, repo, task.issue_number, [assigned_label(self.wolf)])
        comments = await g.list_comments(owner, repo, task.issue_number)
        claimers = {c.wolf for c in (parse_claim(x.body) for x in comments) if c is not None}
        live = await self._alive_set(claimers | holders, comments, task)
        # The labels too: a dead wolf's `assigned:` label without a claim comment goes.
        outcome = decide_after_claim(
            self.wolf, [(c.id, c.body) for c in comments], live, issue.label_names
        )
        if not outcome.won:
            await self._release(task, claim.id)
            if any(
                c is not None and c.wolf == outcome.winner and c.task_id == task.task_id
                for c in (parse_claim(x.body) for x in comments)
            ):
                # The winner holds this very task (JetStream handed it to both of us while
                # the winner's in-progress signal was late). A "skipped" result would be the
                # one the room sees and an ack would end the task even if the winner then
                # fails: put it back, as when its live claim is seen before claiming.
                return TaskOutcome(
                    Disposition.RETRY, None, self.stale_after_s, "claim race lost on this task"
                )
            lost = self._result(
                task, Outcome.SKIPPED, Reason.CLAIMED_BY_OTHER, f"claimed by {outcome.winner}"
            )
            return TaskOutcome(Disposition.ACK, lost)
        for stale_id in outcome.stale_comment_ids:
            await g.delete_comment(owner, repo, stale_id)
        await g.remove_labels(owner, repo, task.issue_number, outcome.stale_labels)

        # An exception from here on leaves the claim in place: a redelivery of this task
        # (to us, or to another wolf once our heartbeat expired) picks it up.
        return await self._triage(task, issue, comments, claim.id)

    async def _triage(
        self, task: Task, issue: Issue, comments: list[Comment], claim_id: int
    ) -> TaskOutcome:
        owner, repo = task.repo.split("/", 1)
        sensitive = await self.sensitive(task) if self.sensitive is not None else False
        if self.budget is not None:
            # No model call for a comment we could not post anyway.
            wait = await self.budget.peek()
            if wait is not None:
                await self._release(task, claim_id)
                return TaskOutcome(Disposition.RETRY, None, wait, "comment budget spent")
        messages = [{"role": "user", "content": triage_prompt(task.repo, issue, comments)}]
        sources = issue_sources(issue, comments)
        try:
            answer = await self.complete(messages, sensitive)
            check = check_triage(answer.text, sources)
            if not check.ok:
                messages += [
                    {"role": "assistant", "content": answer.text},
                    {"role": "user", "content": rubric_repair_prompt(check.problems)},
                ]
                answer = await self.complete(messages, sensitive)
                check = check_triage(answer.text, sources)
        except (NoPrivateProvider, RequestRejected) as exc:
            await self._release(task, claim_id)
            why = (
                Reason.NO_PRIVATE_PROVIDER
                if isinstance(exc, NoPrivateProvider)
                else Reason.REQUEST_REJECTED
            )
            return TaskOutcome(Disposition.TERM, self._result(task, Outcome.FAILED, why, str(exc)))
        except ChainError as exc:
            await self._release(task, claim_id)
            brief = exc.brief if isinstance(exc, ChainExhausted) else {}
            return TaskOutcome(
                Disposition.RETRY, None, self.models_retry_s, str(exc), models_failing=brief
            )
        if not check.ok:
            await self._release(task, claim_id)
            detail = "rubric: " + "; ".join(check.problems)
            return TaskOutcome(
                Disposition.ACK,
                self._result(
                    task,
                    Outcome.FAILED,
                    Reason.RUBRIC_FAILED,
                    detail,
                    provider=answer.provider,
                    model=answer.model,
                ),
            )
        assert check.triage is not None
        if check.triage.confidence == "low":
            await self.gitea.add_labels(owner, repo, task.issue_number, [NEEDS_HUMAN])
            await self._release(task, claim_id)
            return TaskOutcome(
                Disposition.ACK,
                self._result(
                    task,
                    Outcome.NEEDS_HUMAN,
                    Reason.LOW_CONFIDENCE,
                    "low confidence: " + check.triage.next_action,
                    provider=answer.provider,
                    model=answer.model,
                ),
            )
        if self.budget is not None:
            wait = await self.budget.take()
            if wait is not None:
                await self._release(task, claim_id)
                return TaskOutcome(Disposition.RETRY, None, wait, "comment budget spent")
        current = await self.gitea.list_comments(owner, repo, task.issue_number)
        alive = await self._alive_set(
            {c.wolf for c in (parse_claim(x.body) for x in current) if c is not None},
            current,
            task,
        )
        if not still_mine(self.wolf, task.task_id, [(c.id, c.body) for c in current], alive):
            # Another wolf took the claim over (it took us for dead). Put the task back rather
            # than report a skip and ack: if that wolf then fails, the task must come round
            # again; if it succeeds, its ack ends the task and the room sees its "done".
            return TaskOutcome(
                Disposition.RETRY, None, self.stale_after_s, "claim lost before commenting"
            )
        # Listed after the liveness reads above: a wolf they showed done with this task had
        # already posted its comment, so it shows here, and we must not post a second one.
        latest = await self.gitea.list_comments(owner, repo, task.issue_number)
        done = next((c for c in latest if find_task_marker(c.body) == task.task_id), None)
        if done is not None:
            # Another wolf triaged this very task meanwhile: the issue is done, and the room
            # must read "done" whichever result reaches it first (a "skipped" here once told
            # the room a triaged issue was not done; bench/cluster.py found it).
            await self._finish(task, latest)
            already = self._result(
                task,
                Outcome.DONE,
                Reason.ALREADY_TRIAGED,
                "triaged by another wolf meanwhile",
                comment_url=done.html_url,
            )
            return TaskOutcome(Disposition.ACK, already)
        body = format_comment(check.triage, task.task_id, answer.provider, answer.model, self.wolf)
        posted = await self.gitea.create_comment(owner, repo, task.issue_number, body)
        await self._finish(task, current)
        return TaskOutcome(
            Disposition.ACK,
            self._result(
                task,
                Outcome.DONE,
                Reason.TRIAGED,
                check.triage.next_action,
                comment_url=posted.html_url,
                provider=answer.provider,
                model=answer.model,
            ),
        )

    async def _finish(self, task: Task, comments: list[Comment]) -> None:
        owner, repo = task.repo.split("/", 1)
        labels = await self.gitea.add_labels(owner, repo, task.issue_number, [TRIAGED])
        # The task is done: every claim on it goes, ours and a crashed wolf's alike.
        claims = [
            (c.id, claim.wolf)
            for c in comments
            if (claim := parse_claim(c.body)) is not None
            and (claim.wolf == self.wolf or claim.task_id == task.task_id)
        ]
        wolves = {self.wolf} | {w for _, w in claims}
        await self.gitea.remove_labels(
            owner, repo, task.issue_number, [assigned_label(w) for w in wolves], labels
        )
        for comment_id, _ in claims:
            await self.gitea.delete_comment(owner, repo, comment_id)

    async def _release(self, task: Task, claim_id: int) -> None:
        owner, repo = task.repo.split("/", 1)
        await self.gitea.remove_label(owner, repo, task.issue_number, assigned_label(self.wolf))
        await self.gitea.delete_comment(owner, repo, claim_id)
