"""Two wolves handed the same task at once leave exactly one triage comment.

JetStream hands a task to a second wolf when the first one's in-progress signal comes
late (a loaded machine, a cluster electing a leader). Both then race through the claim.
A claim counts as abandoned when its wolf's heartbeat does not name the task, and
heartbeats are periodic: unless each wolf announces its task before its claim is visible,
each reads the other's fresh claim as abandoned, both win, and the issue gets two
comments. The race is forced here without timing: neither wolf gets past its claim until
both claims are on the issue.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from agents.claim import parse_claim
from agents.rubric import find_task_marker
from agents.triage import Announce, Disposition, Triager
from fleetcore.bus.messages import Outcome, Task
from fleetcore.forge.client import GiteaClient
from fleetcore.forge.models import Comment
from fleetcore.models.chain import Completion
from fleettest.gitea_standin import GiteaStandin

OWNER, REPO = "acme", "web"
TITLE = "Crash when saving a draft"
BODY = "Saving a draft throws a TypeError in the editor on version 2.3.1."
REPLY = (
    "Evidence:\n"
    '- "Saving a draft throws a TypeError" (from the issue)\n'
    "Recommended next action: Reproduce it on the current main branch and add a test.\n"
    "Confidence: medium\n"
)


class ClaimBarrier(GiteaClient):
    """A Gitea client whose claim comment returns only once both wolves' claims exist."""

    def __init__(self, base_url: str, token: str, both_claimed: asyncio.Event) -> None:
        super().__init__(base_url, token, retries=2, backoff_s=0.01)
        self.both_claimed = both_claimed

    async def create_comment(self, owner: str, repo: str, number: int, body: str) -> Comment:
        posted = await super().create_comment(owner, repo, number, body)
        if parse_claim(body) is not None:
            claims = [
                c for c in await self.list_comments(owner, repo, number) if parse_claim(c.body)
            ]
            if len(claims) >= 2:
                self.both_claimed.set()
            await asyncio.wait_for(self.both_claimed.wait(), 10)
        return posted


class Heartbeats:
    """The registry as other wolves read it: only what a wolf has written so far."""

    def __init__(self) -> None:
        self.working: dict[str, set[str]] = {}

    async def alive(self, _name: str) -> bool:
        return True  # both wolves are alive throughout: neither claim is stale

    async def working_on(self, name: str, task_id: str) -> bool:
        return task_id in self.working.get(name, set())

    def announcer(self, wolf: str) -> Announce:
        async def announce(task: Task) -> None:
            self.working.setdefault(wolf, set()).add(task.task_id)

        return announce


@pytest.fixture
async def gitea() -> AsyncIterator[tuple[GiteaStandin, str]]:
    async with GiteaStandin() as standin:
        token = standin.add_user("fleet", admin=True)
        standin.add_repo(OWNER, REPO)
        standin.add_collaborator(OWNER, REPO, "fleet", "admin")
        yield standin, token
        assert standin.violations == []


async def test_two_wolves_racing_for_one_task_comment_once(
    gitea: tuple[GiteaStandin, str],
) -> None:
    standin, token = gitea
    n = standin.add_issue(OWNER, REPO, TITLE, BODY)
    task = Task.new("b1", "web", f"{OWNER}/{REPO}", n, "wolves")
    beats = Heartbeats()
    both_claimed = asyncio.Event()
    clients = [ClaimBarrier(standin.url, token, both_claimed) for _ in range(2)]
    model_calls: list[str] = []

    def triager(wolf: str, client: GiteaClient) -> Triager:
        async def complete(_messages: list[dict[str, str]], _sensitive: bool) -> Completion:
            model_calls.append(wolf)
            return Completion(text=REPLY, provider="fake", model="fake-1", latency_s=0.0)

        return Triager(
            wolf,
            client,
            complete,
            beats.alive,
            stale_after_s=7.0,
            working_on=beats.working_on,
            announce=beats.announcer(wolf),
        )

    try:
        outcomes = await asyncio.gather(
            triager("wolf-a", clients[0]).run(task),
            triager("wolf-b", clients[1]).run(task),
        )
    finally:
        for client in clients:
            await client.aclose()

    # One winner: before wolves announced their task, both won here, each deleted the
    # other's claim as stale and lost its own (no comment at all); with the other's
    # delete coming later, both commented.
    assert model_calls == ["wolf-a"], outcomes
    bodies = [c["body"] for c in standin.comments(OWNER, REPO, n)]
    triaged = [b for b in bodies if find_task_marker(b) == task.task_id]
    assert len(triaged) == 1, f"{len(triaged)} triage comments: {model_calls=}"
    assert [b for b in bodies if parse_claim(b) is not None] == []
    done = [o for o in outcomes if o.result is not None and o.result.outcome is Outcome.DONE]
    assert len(done) == 1
    # The loser either skips or comes back later; it never reports the task done.
    (other,) = [o for o in outcomes if o not in done]
    assert other.disposition in (Disposition.ACK, Disposition.RETRY)
    assert other.result is None or other.result.outcome is Outcome.SKIPPED
