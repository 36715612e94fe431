"""The Triager on real parts, minus the bus: the Gitea stand-in and a fake model server.

Every test drives `Triager.run` directly and then checks two things: what Gitea holds
afterwards (comments, labels) and the outcome the wolf would settle the task with.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import pytest

from agents.claim import claim_comment_body, parse_claim
from agents.rubric import check_triage, find_task_marker, format_comment, task_marker
from agents.triage import NEEDS_HUMAN, TRIAGED, Disposition, Triager, crisis_level
from agents.wolf import HourlyBudget
from fleetcore.bus.messages import CrisisLevel, Outcome, Reason, Task
from fleetcore.forge.client import GiteaClient
from fleetcore.models.chain import Completion, FallbackChain
from fleetcore.models.config import ChainConfig, ProviderConfig
from fleettest.gitea_standin import GiteaStandin
from fleettest.models_fake import Behaviour, FakeProvider, ok, status, triage_reply

OWNER, REPO = "acme", "web"
SOUL = "You are Hermes."
TITLE = "Crash when saving a draft"
BODY = "Saving a draft throws a TypeError in the editor on version 2.3.1."
CRISIS = "I want to end my life, nothing matters anymore"
# Short timeouts and a deadline shorter than the cooldown: a dead chain fails at once.
CHAIN_CFG = ChainConfig(
    connect_timeout_s=1,
    first_byte_timeout_s=2,
    total_timeout_s=5,
    short_cooldown_s=30,
    default_deadline_s=1,
)


def reply(quote: str, confidence: str = "medium", action: str | None = None) -> str:
    action = action or "Reproduce it on the current main branch and add a test."
    return (
        "Evidence:\n"
        f'- "{quote}" (from the issue)\n'
        f"Recommended next action: {action}\n"
        f"Confidence: {confidence}\n"
    )


def task(number: int, burn: str = "b1") -> Task:
    return Task.new(burn, "web", f"{OWNER}/{REPO}", number, "wolves")


@dataclass
class Env:
    gitea: GiteaStandin
    client: GiteaClient
    token: str
    live: set[str] = field(default_factory=set)
    closers: list[Any] = field(default_factory=list)

    async def alive(self, name: str) -> bool:
        return name in self.live

    async def provider(
        self, behaviour: Behaviour, *, logs_prompts: bool = False
    ) -> tuple[FakeProvider, FallbackChain]:
        fake = FakeProvider("openai", behaviour)
        await fake.__aenter__()
        self.closers.append(fake.__aexit__)
        cfg = ProviderConfig(
            provider="fake", model="fake-1", base_url=fake.base_url, logs_prompts=logs_prompts
        )
        chain = FallbackChain([cfg], CHAIN_CFG, SOUL, primary="fake")
        self.closers.append(lambda *_: chain.aclose())
        return fake, chain

    def triager(
        self,
        wolf: str,
        chain: FallbackChain,
        *,
        client: GiteaClient | None = None,
        budget: HourlyBudget | None = None,
        sensitive: bool = False,
    ) -> Triager:
        async def complete(messages: list[dict[str, str]], private: bool) -> Completion:
            return await chain.complete(messages, sensitive=private)

        async def is_sensitive(_task: Task) -> bool:
            return sensitive

        return Triager(
            wolf,
            client or self.client,
            complete,
            self.alive,
            budget,
            is_sensitive,
            stale_after_s=7.0,
        )

    def issue(self, number: int) -> dict[str, Any]:
        return self.gitea.issue(OWNER, REPO, number)

    def labels(self, number: int) -> list[str]:
        return list(self.issue(number)["labels"])

    def comments(self, number: int) -> list[str]:
        return [c["body"] for c in self.gitea.comments(OWNER, REPO, number)]

    def triage_comments(self, number: int) -> list[str]:
        return [b for b in self.comments(number) if find_task_marker(b) is not None]

    def claim_comments(self, number: int) -> list[str]:
        return [b for b in self.comments(number) if parse_claim(b) is not None]

    def add_issue(self, title: str = TITLE, body: str = BODY, **kw: Any) -> int:
        return self.gitea.add_issue(OWNER, REPO, title, body, **kw)

    def assert_untouched_by_fleet(self, number: int) -> None:
        assert self.triage_comments(number) == []
        assert self.claim_comments(number) == []
        assert not [lb for lb in self.labels(number) if lb.startswith("assigned:")]
        assert TRIAGED not in self.labels(number)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with GiteaStandin() as gitea:
        token = gitea.add_user("fleet", admin=True)
        gitea.add_repo(OWNER, REPO)
        gitea.add_collaborator(OWNER, REPO, "fleet", "admin")
        client = GiteaClient(gitea.url, token, retries=2, backoff_s=0.01)
        e = Env(gitea, client, token)
        try:
            yield e
        finally:
            for close in reversed(e.closers):
                await close()
            await client.aclose()
        assert gitea.violations == []


def prompts(fake: FakeProvider) -> list[str]:
    """The last user message of every request the model server received."""
    return [str(r["messages"][-1]["content"]) for r in fake.requests]


# -- the normal path -----------------------------------------------------------------------


async def test_happy_path_posts_one_marked_comment_and_cleans_up(env: Env) -> None:
    n = env.add_issue()
    fake, chain = await env.provider(ok(triage_reply))
    t = task(n)

    out = await env.triager("wolf-a", chain).run(t)

    assert out.disposition is Disposition.ACK
    assert out.result is not None
    assert out.result.outcome == "done"
    assert (out.result.provider, out.result.model) == ("fake", "fake-1")
    assert out.result.wolf == "wolf-a" and out.result.task_id == t.task_id
    assert out.result.detail == "Reproduce it on the current main branch and add a test."
    comments = env.gitea.comments(OWNER, REPO, n)
    assert len(comments) == 1
    (posted,) = comments
    assert task_marker(t.task_id) in posted["body"]
    assert f"> {TITLE}" in posted["body"]
    assert "wolf `wolf-a`" in posted["body"] and "`fake-1`" in posted["body"]
    assert posted["user"] == "fleet"
    assert out.result.comment_url and out.result.comment_url.endswith(str(posted["id"]))
    assert env.labels(n) == [TRIAGED]
    assert env.claim_comments(n) == []
    assert len(fake.requests) == 1
    (prompt,) = prompts(fake)
    assert f"Title: {TITLE}" in prompt and BODY in prompt
    assert "Labels: none" in prompt.splitlines()


async def test_prompt_leaves_out_fleet_comments_and_claim_labels(env: Env) -> None:
    n = env.add_issue(labels=["bug"])
    await env.client.create_comment(OWNER, REPO, n, "Same here on Firefox 128.")
    fake, chain = await env.provider(ok(triage_reply))

    out = await env.triager("wolf-a", chain).run(task(n))

    assert out.result is not None and out.result.outcome == "done"
    (prompt,) = prompts(fake)
    assert "Labels: bug" in prompt
    assert "assigned:" not in prompt and "fleet-claim" not in prompt
    assert "- fleet: Same here on Firefox 128." in prompt
    assert sorted(env.labels(n)) == ["bug", TRIAGED]
    assert len(env.triage_comments(n)) == 1 and len(env.comments(n)) == 2


# -- safety --------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["body", "comment"])
async def test_crisis_text_never_reaches_a_model(env: Env, where: str) -> None:
    if where == "body":
        n = env.add_issue("Editor question", f"{CRISIS}. Also the editor is slow.")
    else:
        n = env.add_issue()
        alice = env.gitea.add_user("alice")
        async with GiteaClient(env.gitea.url, alice, retries=0) as as_alice:
            await as_alice.create_comment(OWNER, REPO, n, CRISIS)
    fake, chain = await env.provider(ok(triage_reply))

    out = await env.triager("wolf-a", chain).run(task(n))

    assert fake.requests == []
    assert out.disposition is Disposition.ACK
    assert out.result is not None
    assert out.result.outcome is Outcome.NEEDS_HUMAN and out.result.reason is Reason.CRISIS
    assert out.result.is_crisis and out.result.crisis_level is CrisisLevel.CRISIS
    assert "end my life" not in out.result.to_bytes().decode()
    assert out.result.provider is None and out.result.model is None
    assert env.labels(n) == [NEEDS_HUMAN]
    assert env.claim_comments(n) == [] and env.triage_comments(n) == []
    assert len(env.comments(n)) == (1 if where == "comment" else 0)


# -- the rubric ----------------------------------------------------------------------------


async def test_invented_evidence_twice_posts_nothing(env: Env) -> None:
    n = env.add_issue()
    invented = reply("The server returns a 500 error on login")
    fake, chain = await env.provider(ok(invented))

    out = await env.triager("wolf-a", chain).run(task(n))

    assert out.disposition is Disposition.ACK
    assert out.result is not None
    assert out.result.outcome == "failed" and out.result.reason is Reason.RUBRIC_FAILED
    assert out.result.detail.startswith("rubric: ")
    assert "evidence not found in the issue" in out.result.detail
    assert len(fake.requests) == 2  # the reply and one repair attempt, no more
    assert "cannot be posted yet" in prompts(fake)[1]
    assert env.comments(n) == []
    env.assert_untouched_by_fleet(n)
    assert env.labels(n) == []


async def test_repaired_reply_is_posted(env: Env) -> None:
    n = env.add_issue()

    def answer(body: dict[str, Any]) -> str:
        repairing = any(
            "cannot be posted yet" in str(m.get("content", "")) for m in body["messages"]
        )
        if repairing:
            return triage_reply(body)
        return f'Evidence:\n- "{TITLE}"\nConfidence: high\n'  # no next action

    fake, chain = await env.provider(ok(answer))

    out = await env.triager("wolf-a", chain).run(task(n))

    assert out.disposition is Disposition.ACK
    assert out.result is not None and out.result.outcome == "done"
    assert len(fake.requests) == 2
    assert "missing Recommended next action" in prompts(fake)[1]
    assert len(env.triage_comments(n)) == 1 and len(env.comments(n)) == 1
    assert env.labels(n) == [TRIAGED]


async def test_low_confidence_goes_to_a_person(env: Env) -> None:
    n = env.add_issue()
    fake, chain = await env.provider(
        ok(reply(TITLE, "low", "Ask the reporter which editor plugin is enabled."))
    )

    out = await env.triager("wolf-a", chain).run(task(n))

    assert out.disposition is Disposition.ACK
    assert out.result is not None
    assert out.result.outcome == "needs_human" and out.result.reason is Reason.LOW_CONFIDENCE
    assert not out.result.is_crisis
    assert out.result.detail.startswith("low confidence: ")
    assert out.result.provider == "fake"
    assert len(fake.requests) == 1
    assert env.comments(n) == []
    assert env.labels(n) == [NEEDS_HUMAN]


# -- redelivery and crashes ----------------------------------------------------------------


async def test_redelivery_after_success_does_not_comment_again(env: Env) -> None:
    n = env.add_issue()
    fake, chain = await env.provider(ok(triage_reply))
    triager = env.triager("wolf-a", chain)
    t = task(n)

    first = await triager.run(t)
    second = await triager.run(t)

    assert first.result is not None and first.result.outcome == "done"
    assert second.disposition is Disposition.ACK
    assert second.result is not None
    assert second.result.outcome == "done"
    assert second.result.reason is Reason.ALREADY_TRIAGED
    assert second.result.comment_url == first.result.comment_url
    assert len(fake.requests) == 1
    assert len(env.triage_comments(n)) == 1 and len(env.comments(n)) == 1
    assert env.labels(n) == [TRIAGED]


async def test_redelivery_after_a_crash_finishes_the_bookkeeping(env: Env) -> None:
    n = env.add_issue()
    t = task(n)
    # wolf-a claimed, commented, then died before labelling and cleaning up.
    await env.client.create_comment(OWNER, REPO, n, claim_comment_body("wolf-a", t.task_id))
    await env.client.add_labels(OWNER, REPO, n, ["assigned:wolf-a"])
    triage = check_triage(reply(TITLE), [TITLE, BODY]).triage
    crashed = format_comment(triage, t.task_id, "fake", "fake-1", "wolf-a")
    await env.client.create_comment(OWNER, REPO, n, crashed)
    fake, chain = await env.provider(ok(triage_reply))

    out = await env.triager("wolf-b", chain).run(t)

    assert out.disposition is Disposition.ACK
    assert out.result is not None
    assert out.result.outcome == "done" and out.result.detail == "already triaged"
    assert out.result.comment_url is not None
    assert fake.requests == []
    assert env.comments(n) == [crashed]
    assert env.labels(n) == [TRIAGED]


@pytest.mark.parametrize("with_comment", [True, False], ids=["claim+label", "label-only"])
async def test_dead_wolfs_claim_is_taken_over(env: Env, with_comment: bool) -> None:
    n = env.add_issue()
    t = task(n)
    if with_comment:
        await env.client.create_comment(OWNER, REPO, n, claim_comment_body("wolf-dead", t.task_id))
    await env.client.add_labels(OWNER, REPO, n, ["assigned:wolf-dead"])
    env.live = {"wolf-b"}
    fake, chain = await env.provider(ok(triage_reply))

    out = await env.triager("wolf-b", chain).run(t)

    assert out.disposition is Disposition.ACK
    assert out.result is not None and out.result.outcome == "done"
    assert len(fake.requests) == 1
    assert env.claim_comments(n) == []
    assert len(env.triage_comments(n)) == 1 and len(env.comments(n)) == 1
    assert env.labels(n) == [TRIAGED]


async def test_live_wolf_on_the_same_task_means_come_back_later(env: Env) -> None:
    n = env.add_issue()
    t = task(n)
    theirs = claim_comment_body("wolf-other", t.task_id)
    await env.client.create_comment(OWNER, REPO, n, theirs)
    await env.client.add_labels(OWNER, REPO, n, ["assigned:wolf-other"])
    env.live = {"wolf-other"}
    fake, chain = await env.provider(ok(triage_reply))

    out = await env.triager("wolf-a", chain).run(t)

    assert out.disposition is Disposition.RETRY
    assert out.result is None
    assert out.retry_after_s == 7.0  # the triager's stale_after_s
    assert fake.requests == []
    assert env.comments(n) == [theirs]
    assert env.labels(n) == ["assigned:wolf-other"]


async def test_live_wolf_on_another_task_means_skip(env: Env) -> None:
    n = env.add_issue()
    theirs = claim_comment_body("wolf-other", task(n, burn="b0").task_id)
    await env.client.create_comment(OWNER, REPO, n, theirs)
    await env.client.add_labels(OWNER, REPO, n, ["assigned:wolf-other"])
    env.live = {"wolf-other"}
    fake, chain = await env.provider(ok(triage_reply))

    out = await env.triager("wolf-a", chain).run(task(n))

    assert out.disposition is Disposition.ACK
    assert out.result is not None
    assert out.result.outcome == "skipped"
    assert "wolf-other" in out.result.detail
    assert fake.requests == []
    assert env.comments(n) == [theirs]
    assert env.labels(n) == ["assigned:wolf-other"]


async def test_losing_a_claim_race_on_the_same_task_leaves_it_to_the_winner(env: Env) -> None:
    """Two wolves hold one task when JetStream redelivers it while its first wolf still
    works (its in-progress signal came late). Here the first wolf's claim lands between the
    second's look at the issue and its own claim. The second loses the race, and must leave
    the task to the winner, as when it sees the live claim before claiming: its "skipped"
    result would be the one reported (results are kept per task; the first one wins), and
    its ack would end the task even if the winner then fails."""
    n = env.add_issue()
    t = task(n)
    env.live = {"wolf-first"}
    _fake, chain = await env.provider(ok(triage_reply))

    async def first_claims_meanwhile(_task: Task) -> None:
        await env.client.create_comment(OWNER, REPO, n, claim_comment_body("wolf-first", t.task_id))
        await env.client.add_labels(OWNER, REPO, n, ["assigned:wolf-first"])

    async def complete(messages: list[dict[str, str]], private: bool) -> Completion:
        return await chain.complete(messages, sensitive=private)

    second = Triager(
        "wolf-second",
        env.client,
        complete,
        env.alive,
        None,
        stale_after_s=7.0,
        announce=first_claims_meanwhile,
    )
    out = await second.run(t)

    assert env.triage_comments(n) == []
    assert [parse_claim(b).wolf for b in env.claim_comments(n)] == ["wolf-first"]  # type: ignore[union-attr]
    assert out.result is None, out.result
    assert out.disposition is Disposition.RETRY


async def test_a_task_triaged_by_another_wolf_meanwhile_is_reported_done(env: Env) -> None:
    """Two wolves hold one task and both win their look at the claims (the other's claim
    came and went, or came late); the other posts its triage while ours asks the model. Ours
    must not post a second comment, and must report the issue done, not skipped: the room
    reads whichever result for the task arrives first (bench/cluster.py saw a "skipped")."""
    n = env.add_issue()
    t = task(n)
    _fake, chain = await env.provider(ok(triage_reply))

    async def other_wolf_posts_meanwhile(
        messages: list[dict[str, str]], private: bool
    ) -> Completion:
        await env.client.create_comment(
            OWNER, REPO, n, f"**Triage** by wolf-other\n\n{task_marker(t.task_id)}"
        )
        return await chain.complete(messages, sensitive=private)

    ours = Triager("wolf-ours", env.client, other_wolf_posts_meanwhile, env.alive, None)
    out = await ours.run(t)

    assert out.disposition is Disposition.ACK
    assert out.result is not None and out.result.outcome == "done", out.result
    assert out.result.reason == Reason.ALREADY_TRIAGED
    assert [find_task_marker(c) for c in env.comments(n)].count(t.task_id) == 1


# -- limits and failures -------------------------------------------------------------------


async def test_spent_comment_budget_puts_the_task_back(env: Env) -> None:
    first, second = (
        env.add_issue(),
        env.add_issue(
            "Toolbar icons vanish", "None of the toolbar icons render after the 2.3 upgrade."
        ),
    )
    fake, chain = await env.provider(ok(triage_reply))
    triager = env.triager("wolf-a", chain, budget=HourlyBudget(1))

    one = await triager.run(task(first))
    two = await triager.run(task(second))
    assert len(fake.requests) == 1  # no model call for a comment that could not be posted

    assert one.result is not None and one.result.outcome == "done"
    assert two.disposition is Disposition.RETRY
    assert two.result is None
    assert two.retry_after_s > 0
    assert env.labels(first) == [TRIAGED] and len(env.comments(first)) == 1
    assert env.comments(second) == []
    assert env.labels(second) == []


async def test_sensitive_work_never_goes_to_a_logging_provider(env: Env) -> None:
    n = env.add_issue()
    fake, chain = await env.provider(ok(triage_reply), logs_prompts=True)

    out = await env.triager("wolf-a", chain, sensitive=True).run(task(n))

    assert out.disposition is Disposition.TERM
    assert out.result is not None and out.result.outcome == "failed"
    assert "private" in out.result.detail
    assert fake.requests == []
    assert env.comments(n) == []
    assert env.labels(n) == []


async def test_every_provider_down_puts_the_task_back(env: Env) -> None:
    n = env.add_issue()
    fake, chain = await env.provider(status(503))

    out = await env.triager("wolf-a", chain).run(task(n))

    assert out.disposition is Disposition.RETRY
    assert out.result is None
    assert out.retry_after_s > 0
    assert "no model provider could answer" in out.reason
    assert len(fake.requests) >= 1
    assert env.comments(n) == []
    assert env.labels(n) == []


async def test_gitea_down_puts_the_task_back_and_writes_nothing(env: Env) -> None:
    n = env.add_issue()
    fake, chain = await env.provider(ok(triage_reply))
    async with GiteaClient(env.gitea.url, env.token, retries=0) as flaky:
        env.gitea.fail_next(50, 503)
        before = len(env.gitea.requests)
        out = await env.triager("wolf-a", chain, client=flaky).run(task(n))
        sent = env.gitea.requests[before:]

    assert out.disposition is Disposition.RETRY
    assert out.result is None and out.retry_after_s > 0
    assert out.reason.startswith("gitea: ")
    assert sent and all(method == "GET" for method, _ in sent)
    assert fake.requests == []
    assert env.comments(n) == []
    assert env.labels(n) == []


async def test_closed_issue_is_skipped(env: Env) -> None:
    n = env.add_issue(state="closed")
    fake, chain = await env.provider(ok(triage_reply))

    out = await env.triager("wolf-a", chain).run(task(n))

    assert out.disposition is Disposition.ACK
    assert out.result is not None
    assert out.result.outcome == "skipped" and out.result.reason is Reason.ISSUE_CLOSED
    assert fake.requests == []
    assert env.comments(n) == []
    assert env.labels(n) == []
    assert env.issue(n)["state"] == "closed"


async def test_missing_issue_fails_for_good(env: Env) -> None:
    n = env.add_issue()
    fake, chain = await env.provider(ok(triage_reply))

    out = await env.triager("wolf-a", chain).run(task(n + 41))

    assert out.disposition is Disposition.TERM
    assert out.result is not None
    assert out.result.outcome == "failed" and "not found" in out.result.detail
    assert out.result.reason is Reason.NOT_FOUND
    assert out.result.issue_number == n + 41
    assert fake.requests == []
    assert env.comments(n) == []


async def test_a_restarted_wolfs_claim_from_its_earlier_run_is_taken_over(env: Env) -> None:
    from datetime import datetime, timedelta

    n = env.add_issue()
    t = task(n)
    await env.client.create_comment(OWNER, REPO, n, claim_comment_body("wolf-other", t.task_id))
    await env.client.add_labels(OWNER, REPO, n, ["assigned:wolf-other"])
    env.live = {"wolf-other"}  # alive again under the same name ...
    restarted = datetime.now(UTC) + timedelta(minutes=1)  # ... since after its claim
    _fake, chain = await env.provider(ok(triage_reply))
    triager = env.triager("wolf-a", chain)

    async def started_at(name: str) -> datetime | None:
        return restarted if name in env.live else None

    triager.started_at = started_at
    out = await triager.run(t)

    assert out.result is not None and out.result.outcome == "done", out
    assert len(env.triage_comments(n)) == 1
    assert env.claim_comments(n) == []
    assert env.labels(n) == ["triaged"]


async def test_a_live_wolfs_claim_from_its_current_run_still_counts(env: Env) -> None:
    from datetime import datetime, timedelta

    n = env.add_issue()
    t = task(n)
    await env.client.create_comment(OWNER, REPO, n, claim_comment_body("wolf-other", t.task_id))
    env.live = {"wolf-other"}
    started = datetime.now(UTC) - timedelta(minutes=1)
    _fake, chain = await env.provider(ok(triage_reply))
    triager = env.triager("wolf-a", chain)

    async def started_at(name: str) -> datetime | None:
        return started if name in env.live else None

    triager.started_at = started_at
    out = await triager.run(t)
    assert out.disposition is Disposition.RETRY
    assert env.triage_comments(n) == []


def test_the_crisis_level_is_the_most_serious_one_found() -> None:
    assert crisis_level(["The editor is slow.", ""]) is None
    assert crisis_level(["The editor is slow.", CRISIS]) is CrisisLevel.CRISIS
    imminent = "I have the pills in my hand and I am taking them tonight, goodbye"
    assert crisis_level([CRISIS, imminent]) is CrisisLevel.IMMINENT
