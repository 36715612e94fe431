"""The fleet's Gitea client against the stand-in, which checks every request and response
against Gitea's own API description: a request the real Gitea would reject fails here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from fleetcore.forge.client import (
    MAX_LIMIT,
    Conflict,
    GiteaClient,
    GiteaUnavailable,
    Invalid,
    NotFound,
    Unauthorized,
)
from fleettest.gitea_standin import GiteaStandin


@pytest.fixture
async def gitea() -> AsyncIterator[GiteaStandin]:
    async with GiteaStandin() as g:
        yield g
        assert g.violations == [], g.violations


@pytest.fixture
async def client(gitea: GiteaStandin) -> AsyncIterator[GiteaClient]:
    token = gitea.add_user("fleet", admin=True)
    gitea.add_repo("acme", "web")
    gitea.add_collaborator("acme", "web", "fleet", "admin")
    c = GiteaClient(gitea.url, token, retries=2, backoff_s=0.01)
    yield c
    await c.aclose()


async def test_version_and_repo(client: GiteaClient, gitea: GiteaStandin) -> None:
    assert await client.version() == gitea.version
    repo = await client.get_repo("acme", "web")
    assert repo.full_name == "acme/web" and not repo.private


async def test_errors_say_what_happened(gitea: GiteaStandin, client: GiteaClient) -> None:
    with pytest.raises(NotFound, match="acme/nope"):
        await client.get_repo("acme", "nope")
    bad = GiteaClient(gitea.url, "not-a-token", retries=0)
    with pytest.raises(Unauthorized, match="token was rejected"):
        await bad.get_repo("acme", "web")
    await bad.aclose()
    with pytest.raises(Invalid):
        await client.create_issue("acme", "web", "   ")


async def test_create_issue_with_label_names_sends_ids_and_keeps_markdown(
    client: GiteaClient, gitea: GiteaStandin
) -> None:
    body = "Steps:\n\n1. open `/login`\n2. **boom**\n\n```\ntrace\n```"
    issue = await client.create_issue("acme", "web", "Login breaks", body, labels=["ready"])
    stored = gitea.issue("acme", "web", issue.number)
    assert stored["title"] == "Login breaks"
    assert stored["body"] == body
    assert stored["labels"] == ["ready"]
    assert issue.html_url.endswith(f"/acme/web/issues/{issue.number}")
    # The label was created on demand once, then reused.
    again = await client.create_issue("acme", "web", "Second", labels=["ready"])
    assert gitea.issue("acme", "web", again.number)["labels"] == ["ready"]
    labels = [lb.name for lb in await client.list_labels("acme", "web")]
    assert labels.count("ready") == 1


async def test_listing_pages_excludes_pulls_and_filters_labels(
    client: GiteaClient, gitea: GiteaStandin
) -> None:
    for n in range(73):
        gitea.add_issue("acme", "web", f"issue {n}", labels=["burn"] if n % 2 else [])
    gitea.add_issue("acme", "web", "a pull request", is_pull=True)
    page = await client.list_issues_page("acme", "web", limit=500)
    assert len(page.items) == MAX_LIMIT
    assert page.total == 73
    every = [i async for i in client.iter_issues("acme", "web")]
    assert len(every) == 73
    assert all(i.title != "a pull request" for i in every)
    burn = [i async for i in client.iter_issues("acme", "web", labels=["burn"])]
    assert len(burn) == 36


async def test_close_reopen_labels_comments(client: GiteaClient, gitea: GiteaStandin) -> None:
    n = gitea.add_issue("acme", "web", "t")
    await client.add_labels("acme", "web", n, ["triaged", "assigned:wolf-1"])
    assert sorted(gitea.issue("acme", "web", n)["labels"]) == ["assigned:wolf-1", "triaged"]
    assert await client.remove_label("acme", "web", n, "assigned:wolf-1")
    assert not await client.remove_label("acme", "web", n, "assigned:wolf-1")
    assert gitea.issue("acme", "web", n)["labels"] == ["triaged"]
    first = await client.create_comment("acme", "web", n, "one")
    second = await client.create_comment("acme", "web", n, "two")
    assert first.id < second.id
    assert [c.body for c in await client.list_comments("acme", "web", n)] == ["one", "two"]
    assert await client.delete_comment("acme", "web", first.id)
    assert not await client.delete_comment("acme", "web", first.id)
    closed = await client.edit_issue("acme", "web", n, state="closed")
    assert closed.state == "closed"
    assert (await client.edit_issue("acme", "web", n, state="open")).state == "open"
    with pytest.raises(NotFound):
        await client.create_comment("acme", "web", 9999, "x")


async def test_a_stale_content_version_is_a_conflict(client: GiteaClient) -> None:
    issue = await client.create_issue("acme", "web", "t", "body")
    assert issue.content_version is not None
    await client.edit_issue(
        "acme", "web", issue.number, body="new", content_version=issue.content_version
    )
    with pytest.raises(Conflict):
        await client.edit_issue(
            "acme", "web", issue.number, body="stale", content_version=issue.content_version
        )


async def test_5xx_and_dropped_connections_are_retried_4xx_never(
    client: GiteaClient, gitea: GiteaStandin
) -> None:
    gitea.fail_next(2, 503)
    assert (await client.get_repo("acme", "web")).full_name == "acme/web"
    gitea.drop_next(1)
    assert (await client.get_repo("acme", "web")).full_name == "acme/web"
    gitea.fail_next(3, 500)
    with pytest.raises(GiteaUnavailable, match="after 3 attempts"):
        await client.get_repo("acme", "web")
    before = len(gitea.requests)
    with pytest.raises(NotFound):
        await client.get_repo("acme", "missing")
    assert len(gitea.requests) == before + 1


async def test_a_post_that_may_have_landed_is_not_retried(
    client: GiteaClient, gitea: GiteaStandin
) -> None:
    gitea.add_issue("acme", "web", "seed")
    await client.ensure_labels("acme", "web", ["ready"])
    gitea.fail_next(1, 500)
    with pytest.raises(GiteaUnavailable):
        await client.create_issue("acme", "web", "once", labels=["ready"])
    page = await client.list_issues_page("acme", "web", state="all")
    assert [i.title for i in page.items].count("once") <= 1


async def test_a_dead_server_is_unavailable_not_a_crash() -> None:
    from fleettest.models_fake import refused_url

    c = GiteaClient(refused_url().removesuffix("/v1"), "t", retries=1, backoff_s=0.01)
    with pytest.raises(GiteaUnavailable, match="cannot connect"):
        await c.version()
    await c.aclose()


async def test_admin_user_token_and_hooks(client: GiteaClient, gitea: GiteaStandin) -> None:
    user = await client.admin_create_user("wolf-1", "wolf-1@fleet.local", "pw-1234567890")
    assert user.login == "wolf-1"
    token = await client.create_token(
        "wolf-1", "wolf-token", ["all"], basic_auth=("wolf-1", "pw-1234567890")
    )
    assert token.secret and token.secret.endswith(token.last_eight)
    as_wolf = GiteaClient(gitea.url, token.secret)
    assert await as_wolf.version()
    await as_wolf.aclose()
    hook = await client.create_hook("acme", "web", "http://127.0.0.1:9/webhooks/gitea", "s3cret")
    assert hook.active and {"issues", "issue_label", "issue_comment"} <= set(hook.events)
    assert [h.id for h in await client.list_hooks("acme", "web")] == [hook.id]


async def test_a_deleted_issue_is_not_found_not_gitea_unavailable(
    client: GiteaClient, gitea: GiteaStandin
) -> None:
    """Gitea answers 500 to comment requests on a missing issue; the client asks for the
    issue itself to tell a deleted issue (NotFound) from a failing Gitea."""
    n = gitea.add_issue("acme", "web", "soon deleted")
    await client.create_comment("acme", "web", n, "first")
    gitea.delete_issue("acme", "web", n)
    with pytest.raises(NotFound, match=f"acme/web#{n} not found"):
        await client.list_comments("acme", "web", n)
    before = len(gitea.requests)
    with pytest.raises(NotFound):
        await client.create_comment("acme", "web", n, "too late")
    assert len(gitea.requests) == before + 2  # the POST, then one GET of the issue


async def test_a_real_500_on_comments_stays_gitea_unavailable(
    client: GiteaClient, gitea: GiteaStandin
) -> None:
    n = gitea.add_issue("acme", "web", "still here")
    gitea.fail_next(1, 500)  # the POST fails; the issue GET that follows finds the issue
    with pytest.raises(GiteaUnavailable):
        await client.create_comment("acme", "web", n, "x")
    assert gitea.comments("acme", "web", n) == []
    gitea.fail_next(4, 500)  # the 3 GETs of the comments fail, and the one probe between
    with pytest.raises(GiteaUnavailable, match="after 3 attempts"):
        await client.list_comments("acme", "web", n)
    gitea.fail_next(1, 500)
    assert await client.list_comments("acme", "web", n) == []  # a passing 500 is retried


async def test_ensure_labels_uses_the_lowest_id_of_existing_duplicates(
    client: GiteaClient, gitea: GiteaStandin
) -> None:
    first = gitea.add_label("acme", "web", "ready")
    gitea.add_label("acme", "web", "ready")  # Gitea allows two labels of one name
    labels = await client.ensure_labels("acme", "web", ["ready", "triaged"])
    assert labels["ready"].id == first
    assert [name for _, name in gitea.labels("acme", "web")].count("triaged") == 1
    n = gitea.add_issue("acme", "web", "t")
    await client.add_labels("acme", "web", n, ["ready"])
    assert gitea.issue("acme", "web", n)["labels"] == ["ready"]


async def test_ensure_labels_looks_up_before_creating_and_writers_converge(
    client: GiteaClient, gitea: GiteaStandin
) -> None:
    gitea.add_label("acme", "web", "burn")  # made by someone else after nothing was cached
    other = GiteaClient(gitea.url, gitea.token("fleet"), retries=0)
    try:
        assert (await client.ensure_labels("acme", "web", ["burn"]))["burn"].id == gitea.label_id(
            "acme", "web", "burn"
        )
        # Two writers miss the same name at once: both create it (Gitea never refuses a
        # clash) and both settle on the older of the two.
        a, b = await asyncio.gather(
            client.ensure_labels("acme", "web", ["needs-human"]),
            other.ensure_labels("acme", "web", ["needs-human"]),
        )
    finally:
        await other.aclose()
    twins = [i for i, name in gitea.labels("acme", "web") if name == "needs-human"]
    assert a["needs-human"].id == b["needs-human"].id == min(twins)
    assert [name for _, name in gitea.labels("acme", "web")].count("burn") == 1


async def test_iter_issues_with_a_duplicated_label_name_finds_either(
    client: GiteaClient, gitea: GiteaStandin
) -> None:
    one = gitea.add_label("acme", "web", "burn")
    two = gitea.add_label("acme", "web", "burn")
    numbers = []
    for label_ids in ([one], [two], [one, two], []):
        n = gitea.add_issue("acme", "web", f"with {label_ids}")
        if label_ids:
            await client._request(
                "PUT",
                f"/repos/acme/web/issues/{n}/labels",
                json={"labels": label_ids},
            )
        numbers.append(n)
    found = sorted([i.number async for i in client.iter_issues("acme", "web", labels=["burn"])])
    assert found == numbers[:3]  # Gitea's own filter would give only the one with both
