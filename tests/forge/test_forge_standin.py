"""The Gitea stand-in, driven with plain httpx as any client would, held to Gitea's behaviour.

These tests pin the semantics the fleet's client depends on (and the traps it must avoid), and
that everything the stand-in says passes the real swagger. Every test gets a fresh stand-in so
`violations == []` means "this session was clean".
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from fleettest.gitea_schema import (
    SwaggerNotFoundError,
    SwaggerValidator,
    parse_link_header,
    shared_dir,
)
from fleettest.gitea_standin import GiteaStandin, implemented_operations, webhook_signature

WEBHOOKS = shared_dir() / "gitea" / "webhooks"


@pytest.fixture
async def gitea() -> AsyncIterator[GiteaStandin]:
    async with GiteaStandin() as standin:
        yield standin


def client(gitea: GiteaStandin, token: str | None = None, **kw: Any) -> httpx.AsyncClient:
    headers = {"Authorization": f"token {token}"} if token else {}
    headers |= kw.pop("headers", {})
    return httpx.AsyncClient(base_url=gitea.url + "/api/v1", headers=headers, **kw)


def basic(login: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


def is_gitea_error(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("message"), str) and "url" in body


class Receiver:
    """A tiny webhook endpoint that records what Gitea posts to it."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[dict[str, str], bytes]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=self.status)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
        await web.SockSite(self._runner, sock).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


# ---- auth and lookups -----------------------------------------------------------------------


async def test_auth_401_with_gitea_error_body(gitea: GiteaStandin) -> None:
    token = gitea.add_user("alice")
    gitea.add_repo("alice", "proj")
    gitea.add_repo("alice", "secret", private=True)
    async with client(gitea) as anon, client(gitea, "not-a-token") as wrong:
        r = await anon.post("/repos/alice/proj/issues", json={"title": "t"})
        assert r.status_code == 401 and is_gitea_error(r.json())
        assert r.json()["message"] == "token is required"
        r = await wrong.get("/repos/alice/proj")
        assert r.status_code == 401 and is_gitea_error(r.json())
        assert (await anon.get("/repos/alice/proj")).status_code == 200  # public read
        assert (await anon.get("/repos/alice/secret")).status_code == 404  # hidden, not 401
        assert (await anon.get("/user")).status_code == 401
    async with client(gitea, headers={"Authorization": f"Bearer {token}"}) as bearer:
        r = await bearer.get("/repos/alice/secret")
        assert r.status_code == 200 and r.json()["private"] is True
        assert r.json()["permissions"] == {"admin": True, "push": True, "pull": True}
    async with client(gitea, headers={"Authorization": f"Token {token}"}) as capitalised:
        r = await capitalised.post("/repos/alice/proj/issues", json={"title": "t"})
        assert r.status_code == 401  # Gitea only parses a lowercase "token" scheme
    assert gitea.violations == []


async def test_unknown_repo_and_issue_are_404(gitea: GiteaStandin) -> None:
    token = gitea.add_user("alice")
    gitea.add_repo("alice", "proj")
    async with client(gitea, token) as api:
        for path in (
            "/repos/alice/nope",
            "/repos/nobody/proj",
            "/repos/alice/proj/issues/7",
            "/repos/alice/nope/issues",
        ):
            r = await api.get(path)
            assert r.status_code == 404, path
            assert is_gitea_error(r.json())
    assert gitea.violations == []


# ---- issues: listing, pagination, labels ------------------------------------------------------


async def test_list_pagination_headers_and_type_issues(gitea: GiteaStandin) -> None:
    token = gitea.add_user("alice")
    gitea.add_repo("alice", "proj")
    for n in range(60):
        gitea.add_issue("alice", "proj", f"issue {n}")
    gitea.add_issue("alice", "proj", "a pull request", is_pull=True)
    gitea.add_issue("alice", "proj", "another", is_pull=True)
    base = f"{gitea.url}/api/v1/repos/alice/proj/issues"
    async with client(gitea, token) as api:
        r = await api.get("/repos/alice/proj/issues", params={"type": "issues", "limit": 100})
        assert r.status_code == 200
        assert len(r.json()) == 50  # capped
        assert r.headers["X-Total-Count"] == "60"
        assert r.headers["Link"] == (
            f'<{base}?limit=100&page=2&type=issues>; rel="next",'
            f'<{base}?limit=100&page=2&type=issues>; rel="last"'
        )
        assert all(i["pull_request"] is None for i in r.json())
        r = await api.get(
            "/repos/alice/proj/issues", params={"type": "issues", "limit": 100, "page": 2}
        )
        assert len(r.json()) == 10
        links = parse_link_header(r.headers["Link"])
        assert set(links) == {"first", "prev"}
        assert links["first"] == f"{base}?limit=100&page=1&type=issues"

        r = await api.get("/repos/alice/proj/issues", params={"type": "issues"})
        assert len(r.json()) == 30  # default page size
        assert set(parse_link_header(r.headers["Link"])) == {"next", "last"}
        assert r.json()[0]["title"] == "issue 59"  # newest first

        # Forgetting type=issues: pull requests come along and are counted.
        r = await api.get("/repos/alice/proj/issues", params={"limit": 50})
        assert r.headers["X-Total-Count"] == "62"
        assert sum(i["pull_request"] is not None for i in r.json()) == 2
        r = await api.get("/repos/alice/proj/issues", params={"type": "pulls"})
        assert [i["title"] for i in r.json()] == ["another", "a pull request"]
    assert gitea.violations == []


async def test_label_filter_is_and_and_drops_unknown_names(gitea: GiteaStandin) -> None:
    token = gitea.add_user("alice")
    gitea.add_repo("alice", "proj")
    one = gitea.add_issue("alice", "proj", "one", labels=["queued"])
    both = gitea.add_issue("alice", "proj", "both", labels=["queued", "urgent"])
    gitea.add_issue("alice", "proj", "none")
    async with client(gitea, token) as api:

        async def numbers(labels: str) -> list[int]:
            r = await api.get(
                "/repos/alice/proj/issues", params={"type": "issues", "labels": labels}
            )
            return sorted(i["number"] for i in r.json())

        assert await numbers("queued") == [one, both]
        assert await numbers("queued,urgent") == [both]
        assert await numbers("queued,no-such-label") == [one, both]
        assert len(await numbers("no-such-label")) == 3  # no filter at all
    assert gitea.violations == []


async def test_label_filter_requires_every_label_of_a_duplicated_name(
    gitea: GiteaStandin,
) -> None:
    """GetLabelIDsInRepoByNames returns both `burn` ids, and IncludedLabelIDs ANDs them."""
    token = gitea.add_user("alice")
    gitea.add_repo("alice", "proj")
    async with client(gitea, token) as api:
        ids = []
        for _ in range(2):  # Gitea accepts a second label of the same name
            r = await api.post("/repos/alice/proj/labels", json={"name": "burn", "color": "d93f0b"})
            assert r.status_code == 201
            ids.append(r.json()["id"])
        first = gitea.add_issue("alice", "proj", "first only")
        second = gitea.add_issue("alice", "proj", "second only")
        both = gitea.add_issue("alice", "proj", "both")
        for n, labels in ((first, ids[:1]), (second, ids[1:]), (both, ids)):
            await api.put(f"/repos/alice/proj/issues/{n}/labels", json={"labels": labels})
        r = await api.get("/repos/alice/proj/issues", params={"type": "issues", "labels": "burn"})
        assert [i["number"] for i in r.json()] == [both]
    assert gitea.violations == []


async def test_create_issue_with_label_ids(gitea: GiteaStandin) -> None:
    token = gitea.add_user("alice")
    gitea.add_repo("alice", "proj")
    async with client(gitea, token) as api:
        r = await api.post(
            "/repos/alice/proj/labels", json={"name": "status/queued", "color": "00aabb"}
        )
        assert r.status_code == 201 and r.json()["color"] == "00aabb"
        queued = r.json()["id"]
        r = await api.post(
            "/repos/alice/proj/issues",
            json={"title": "Fix it", "body": "details", "labels": [queued]},
        )
        assert r.status_code == 201
        assert [lbl["name"] for lbl in r.json()["labels"]] == ["status/queued"]
        assert r.json()["content_version"] == 0

        # Gitea drops ids that are not this repo's labels and still answers 201.
        r = await api.post("/repos/alice/proj/issues", json={"title": "x", "labels": [999]})
        assert r.status_code == 201 and r.json()["labels"] == []
        assert any("999" in w for w in gitea.warnings)

        r = await api.post("/repos/alice/proj/issues", json={"title": ""})
        assert r.status_code == 422 and is_gitea_error(r.json())
    assert gitea.violations == []


async def test_unknown_label_id_is_422_in_strict_mode() -> None:
    async with GiteaStandin(strict_label_ids=True) as gitea:
        token = gitea.add_user("alice")
        gitea.add_repo("alice", "proj")
        async with client(gitea, token) as api:
            r = await api.post("/repos/alice/proj/issues", json={"title": "x", "labels": [999]})
            assert r.status_code == 422 and is_gitea_error(r.json())
        with pytest.raises(KeyError):
            gitea.issue("alice", "proj", 1)  # nothing was created
        assert gitea.violations == []


async def test_issue_label_endpoints_take_names_or_ids(gitea: GiteaStandin) -> None:
    token = gitea.add_user("alice")
    gitea.add_repo("alice", "proj")
    n = gitea.add_issue("alice", "proj", "t")
    bug = gitea.add_label("alice", "proj", "bug")
    wip = gitea.add_label("alice", "proj", "wip")
    path = f"/repos/alice/proj/issues/{n}/labels"
    async with client(gitea, token) as api:
        r = await api.post(path, json={"labels": ["wip", "bug", "nope"]})
        assert r.status_code == 200
        assert [lbl["name"] for lbl in r.json()] == ["bug", "wip"]
        r = await api.post(path, json={"labels": ["bug", wip]})
        assert r.status_code == 400  # names and ids mixed
        r = await api.put(path, json={"labels": [wip]})
        assert [lbl["name"] for lbl in r.json()] == ["wip"]
        assert (await api.delete(f"{path}/{wip}")).status_code == 204
        assert (await api.delete(f"{path}/424242")).status_code == 422
        await api.put(path, json={"labels": [bug, wip]})
        assert (await api.delete(path)).status_code == 204
        assert (await api.get(path)).json() == []
    assert gitea.issue("alice", "proj", n)["labels"] == []
    assert gitea.violations == []


async def test_patch_close_and_reopen(gitea: GiteaStandin) -> None:
    token = gitea.add_user("alice")
    gitea.add_repo("alice", "proj")
    n = gitea.add_issue("alice", "proj", "t")
    async with client(gitea, token) as api:
        r = await api.patch(f"/repos/alice/proj/issues/{n}", json={"state": "closed"})
        assert r.status_code == 201  # Gitea answers an edit with 201
        assert r.json()["state"] == "closed" and r.json()["closed_at"]
        listed = await api.get("/repos/alice/proj/issues", params={"type": "issues"})
        assert listed.json() == []
        closed = await api.get(
            "/repos/alice/proj/issues", params={"type": "issues", "state": "closed"}
        )
        assert [i["number"] for i in closed.json()] == [n]
        r = await api.patch(f"/repos/alice/proj/issues/{n}", json={"state": "open"})
        assert r.json()["state"] == "open" and r.json()["closed_at"] is None
    assert gitea.issue("alice", "proj", n)["state"] == "open"
    assert gitea.violations == []


async def test_stale_content_version_is_409_at_the_body_after_the_title(
    gitea: GiteaStandin,
) -> None:
    """EditIssue writes the title first; ChangeContent then refuses a stale version (409),
    so the body, the assignees and the state after it stay as they were."""
    token = gitea.add_user("alice")
    gitea.add_user("wolf-1")
    gitea.add_repo("alice", "proj")
    gitea.add_collaborator("alice", "proj", "wolf-1")
    n = gitea.add_issue("alice", "proj", "title", body="v0")
    path = f"/repos/alice/proj/issues/{n}"
    async with client(gitea, token) as api:
        r = await api.patch(path, json={"title": "renamed"})
        assert r.json()["content_version"] == 0  # title edits do not bump it
        r = await api.patch(path, json={"body": "v1", "content_version": 0})
        assert r.status_code == 201 and r.json()["content_version"] == 1
        r = await api.patch(
            path,
            json={
                "title": "written first",
                "body": "v2",
                "assignees": ["wolf-1"],
                "state": "closed",
                "content_version": 0,
            },
        )
        assert r.status_code == 409 and is_gitea_error(r.json())
        stored = gitea.issue("alice", "proj", n)
        assert (stored["title"], stored["body"], stored["state"]) == ("written first", "v1", "open")
        assert stored["assignees"] == [] and stored["content_version"] == 1
        r = await api.patch(path, json={"body": "v1"})  # body without version: unchecked
        assert r.json()["content_version"] == 2
        r = await api.patch(path, json={"title": "t2", "content_version": 0})
        assert r.status_code == 201  # Gitea checks the version only where it writes a body
        assert any("content_version without body" in w for w in gitea.warnings)
    assert gitea.violations == []


async def test_unknown_state_is_412_after_the_earlier_parts(gitea: GiteaStandin) -> None:
    token = gitea.add_user("alice")
    gitea.add_repo("alice", "proj")
    n = gitea.add_issue("alice", "proj", "title", body="v0")
    path = f"/repos/alice/proj/issues/{n}"
    async with client(gitea, token) as api:
        r = await api.patch(path, json={"body": "new", "state": "merged"})
        assert r.status_code == 412 and r.json()["message"] == "unknown state: merged"
        r = await api.patch(path, json={"state": ""})
        assert r.status_code == 412
    stored = gitea.issue("alice", "proj", n)
    assert (stored["body"], stored["state"], stored["content_version"]) == ("new", "open", 1)
    assert gitea.violations == []


async def test_titles_are_cut_to_255_with_an_ellipsis(gitea: GiteaStandin) -> None:
    token = gitea.add_user("alice")
    gitea.add_repo("alice", "proj")
    async with client(gitea, token) as api:
        r = await api.post("/repos/alice/proj/issues", json={"title": "x" * 300})
        assert r.status_code == 201
        assert r.json()["title"] == "x" * 252 + "…"
        n = r.json()["number"]
        r = await api.patch(f"/repos/alice/proj/issues/{n}", json={"title": "é" * 200})
        assert r.json()["title"] == "é" * 126 + "…"  # non-ASCII counts 2 of the 255
        r = await api.post("/repos/alice/proj/issues", json={"title": "y" * 255})
        assert r.json()["title"] == "y" * 255  # at the limit: whole
    assert gitea.violations == []


# ---- comments ---------------------------------------------------------------------------------


async def test_comment_ids_are_global_increasing_and_listed_in_order(gitea: GiteaStandin) -> None:
    token = gitea.add_user("alice")
    gitea.add_repo("alice", "proj")
    gitea.add_repo("alice", "other")
    a = gitea.add_issue("alice", "proj", "a")
    b = gitea.add_issue("alice", "other", "b")
    gitea.add_label("alice", "proj", "bug")
    async with client(gitea, token) as api:
        ids = []
        for i, (repo, n) in enumerate([("proj", a), ("other", b), ("proj", a), ("proj", a)]):
            if i == 2:  # a label change in between uses up an (invisible) comment id
                await api.post(f"/repos/alice/proj/issues/{a}/labels", json={"labels": ["bug"]})
            r = await api.post(f"/repos/alice/{repo}/issues/{n}/comments", json={"body": f"c{i}"})
            assert r.status_code == 201
            ids.append(r.json()["id"])
        assert ids == sorted(ids) and len(set(ids)) == 4
        assert ids[2] > ids[1] + 1  # not contiguous
        r = await api.get(f"/repos/alice/proj/issues/{a}/comments")
        assert [c["body"] for c in r.json()] == ["c0", "c2", "c3"]
        assert [c["id"] for c in r.json()] == [ids[0], ids[2], ids[3]]
        assert r.headers["X-Total-Count"] == "3"
        r = await api.get(f"/repos/alice/proj/issues/comments/{ids[2]}")
        assert r.status_code == 200 and r.json()["user"]["login"] == "alice"
        assert (await api.get(f"/repos/alice/proj/issues/comments/{ids[2] - 1}")).status_code == 204
        assert (await api.get(f"/repos/alice/proj/issues/comments/{ids[1]}")).status_code == 404
        assert (await api.delete(f"/repos/alice/proj/issues/comments/{ids[0]}")).status_code == 204
        assert (await api.get(f"/repos/alice/proj/issues/comments/{ids[0]}")).status_code == 404
        issue = (await api.get(f"/repos/alice/proj/issues/{a}")).json()
        assert issue["comments"] == 2
        r = await api.post(f"/repos/alice/proj/issues/{a}/comments", json={"body": ""})
        assert r.status_code == 422
    assert [c["body"] for c in gitea.comments("alice", "proj", a)] == ["c2", "c3"]
    assert gitea.violations == []


async def test_comment_urls_are_web_pages_by_kind(gitea: GiteaStandin) -> None:
    token = gitea.add_user("alice")
    gitea.add_repo("alice", "proj")
    n = gitea.add_issue("alice", "proj", "an issue")
    pr = gitea.add_issue("alice", "proj", "a pull request", is_pull=True)
    web = f"{gitea.url}/alice/proj"
    async with client(gitea, token) as api:
        r = await api.post(f"/repos/alice/proj/issues/{n}/comments", json={"body": "on issue"})
        assert r.json()["issue_url"] == f"{web}/issues/{n}"
        assert r.json()["pull_request_url"] == ""
        r = await api.post(f"/repos/alice/proj/issues/{pr}/comments", json={"body": "on PR"})
        assert r.json()["issue_url"] == ""
        assert r.json()["pull_request_url"] == f"{web}/pulls/{pr}"
        assert r.json()["html_url"] == f"{web}/pulls/{pr}#issuecomment-{r.json()['id']}"
    assert gitea.violations == []


async def test_comments_on_a_missing_issue_are_500_like_gitea(gitea: GiteaStandin) -> None:
    """Gitea 1.23 does not map GetIssueByIndex's not-found error on these two routes."""
    token = gitea.add_user("alice")
    gitea.add_repo("alice", "proj")
    n = gitea.add_issue("alice", "proj", "soon gone")
    gitea.delete_issue("alice", "proj", n)
    async with client(gitea, token) as api:
        r = await api.get(f"/repos/alice/proj/issues/{n}/comments")
        assert r.status_code == 500 and r.json()["message"] == ""
        r = await api.post(f"/repos/alice/proj/issues/{n}/comments", json={"body": "x"})
        assert r.status_code == 500 and is_gitea_error(r.json())
        assert (await api.get(f"/repos/alice/proj/issues/{n}")).status_code == 404
    assert gitea.violations == []


async def test_users_carry_username_everywhere(gitea: GiteaStandin) -> None:
    token = gitea.add_user("alice")
    gitea.add_repo("alice", "proj")
    async with Receiver() as receiver, client(gitea, token) as api:
        assert (await api.get("/user")).json()["username"] == "alice"
        await api.post(
            "/repos/alice/proj/hooks",
            json={
                "type": "gitea",
                "active": True,
                "events": ["issues"],
                "config": {"url": receiver.url, "content_type": "json"},
            },
        )
        r = await api.post("/repos/alice/proj/issues", json={"title": "t"})
        assert r.json()["user"]["username"] == "alice"
        assert (await api.get("/repos/alice/proj")).json()["owner"]["username"] == "alice"
        await gitea.deliveries_settled()
    payload = json.loads(receiver.received[0][1])
    assert payload["sender"]["username"] == payload["sender"]["login"] == "alice"
    assert gitea.violations == []


def test_the_validator_knows_username_but_not_other_inventions() -> None:
    validator = SwaggerValidator()
    user = {"id": 1, "login": "alice", "username": "alice"}
    assert not [p for p in validator.validate_definition("User", user) if "username" in p]
    bad = validator.validate_definition("User", {**user, "nickname": "al"})
    assert any("nickname" in p for p in bad)
    assert validator.validate_definition("User", {**user, "username": 7})  # typed


# ---- users and tokens -------------------------------------------------------------------------


async def test_admin_creates_agent_user_who_makes_and_uses_a_token(gitea: GiteaStandin) -> None:
    root = gitea.add_user("root", admin=True)
    plain = gitea.add_user("plain")
    gitea.add_repo("root", "proj")
    n = gitea.add_issue("root", "proj", "task")
    user = {
        "username": "wolf-1",
        "email": "wolf-1@fleet.local",
        "password": "s3cret-pass",
        "must_change_password": False,
    }
    async with client(gitea, root) as admin, client(gitea, plain) as nobody, client(gitea) as anon:
        assert (await nobody.post("/admin/users", json=user)).status_code == 403
        r = await admin.post("/admin/users", json=user)
        assert r.status_code == 201 and r.json()["login"] == "wolf-1"
        assert (await admin.post("/admin/users", json=user)).status_code == 422  # exists

        tokens = "/users/wolf-1/tokens"
        assert (await admin.post(tokens, json={"name": "t", "scopes": ["all"]})).status_code == 401
        creds = basic("wolf-1", "s3cret-pass")
        r = await anon.post(tokens, json={"name": "t"}, headers=creds)
        assert r.status_code == 400  # a token needs a scope
        r = await anon.post(
            tokens, json={"name": "agent", "scopes": ["write:issue"]}, headers=creds
        )
        assert r.status_code == 201
        sha1 = r.json()["sha1"]
        assert r.json()["token_last_eight"] == sha1[-8:]
        assert (
            await anon.post(tokens, json={"name": "agent", "scopes": ["all"]}, headers=creds)
        ).status_code == 400  # name taken
        assert (
            await anon.post(
                tokens, json={"name": "x", "scopes": ["all"]}, headers=basic("wolf-1", "wrong")
            )
        ).status_code == 401

    async with client(gitea, sha1) as agent:
        r = await agent.post(f"/repos/root/proj/issues/{n}/comments", json={"body": "on it"})
        assert r.status_code == 201 and r.json()["user"]["login"] == "wolf-1"
        r = await agent.get("/user")  # write:issue does not cover the user category
        assert r.status_code == 403 and is_gitea_error(r.json())
    assert gitea.violations == []


async def test_must_change_password_blocks_the_api(gitea: GiteaStandin) -> None:
    root = gitea.add_user("root", admin=True)
    async with client(gitea, root) as admin, client(gitea) as anon:
        r = await admin.post(
            "/admin/users",
            json={"username": "wolf-2", "email": "w2@f.local", "password": "s3cret-pass"},
        )
        assert r.status_code == 201
        r = await anon.post(
            "/users/wolf-2/tokens",
            json={"name": "t", "scopes": ["all"]},
            headers=basic("wolf-2", "s3cret-pass"),
        )
        assert r.status_code == 403
        assert "change your password" in r.json()["message"]
    assert gitea.violations == []


# ---- webhooks ---------------------------------------------------------------------------------


async def test_hooks_deliver_signed_gitea_bodies(gitea: GiteaStandin) -> None:
    token = gitea.add_user("alice")
    gitea.add_repo("alice", "proj")
    bug = gitea.add_label("alice", "proj", "bug")
    async with Receiver() as receiver, Receiver() as idle, client(gitea, token) as api:
        r = await api.post(
            "/repos/alice/proj/hooks",
            json={
                "type": "gitea",
                "active": True,
                "events": ["issues"],
                "config": {"url": receiver.url, "content_type": "json", "secret": "s3"},
            },
        )
        assert r.status_code == 201
        assert "secret" not in r.json()["config"]
        assert "issue_comment" in r.json()["events"]  # "issues" subscribes to comments too
        r = await api.post(
            "/repos/alice/proj/hooks",
            json={
                "type": "gitea",
                "events": ["issues"],  # active defaults to false
                "config": {"url": idle.url, "content_type": "json"},
            },
        )
        assert r.status_code == 201 and r.json()["active"] is False
        listed = await api.get("/repos/alice/proj/hooks")
        assert [h["config"]["url"] for h in listed.json()] == [receiver.url, idle.url]

        r = await api.post("/repos/alice/proj/issues", json={"title": "hooked"})
        n = r.json()["number"]
        await api.post(f"/repos/alice/proj/issues/{n}/labels", json={"labels": [bug]})
        await api.post(f"/repos/alice/proj/issues/{n}/comments", json={"body": "hi"})
        await api.patch(f"/repos/alice/proj/issues/{n}", json={"state": "closed"})
        await gitea.deliveries_settled()

    assert idle.received == []
    seen = []
    for headers, body in receiver.received:
        assert headers["X-Gitea-Signature"] == hmac.new(b"s3", body, hashlib.sha256).hexdigest()
        assert headers["Content-Type"] == "application/json"
        payload = json.loads(body)
        assert payload["repository"]["full_name"] == "alice/proj"
        assert payload["sender"]["login"] == "alice"
        assert payload["issue"]["number"] == n
        seen.append((headers["X-Gitea-Event"], headers["X-Gitea-Event-Type"], payload["action"]))
    assert seen == [
        ("issues", "issues", "opened"),
        ("issues", "issue_label", "label_updated"),
        ("issue_comment", "issue_comment", "created"),
        ("issues", "issues", "closed"),
    ]
    label_body = json.loads(receiver.received[1][1])
    assert [lbl["name"] for lbl in label_body["issue"]["labels"]] == ["bug"]
    comment_body = json.loads(receiver.received[2][1])
    assert comment_body["comment"]["body"] == "hi" and comment_body["is_pull"] is False
    assert [d.status for d in gitea.deliveries] == [200, 200, 200, 200]
    assert len({d.delivery_id for d in gitea.deliveries}) == 4
    assert gitea.violations == []


async def test_assignment_and_unassignment_are_delivered(gitea: GiteaStandin) -> None:
    token = gitea.add_user("alice")
    gitea.add_user("wolf-1")
    gitea.add_user("stranger")
    gitea.add_repo("alice", "proj")
    gitea.add_collaborator("alice", "proj", "wolf-1")
    async with Receiver() as receiver, client(gitea, token) as api:
        await api.post(
            "/repos/alice/proj/hooks",
            json={
                "type": "gitea",
                "active": True,
                "events": ["issues"],
                "config": {"url": receiver.url, "content_type": "json"},
            },
        )
        r = await api.post(
            "/repos/alice/proj/issues", json={"title": "t", "assignees": ["stranger"]}
        )
        assert r.status_code == 422  # cannot be assigned: no write access; nothing created
        r = await api.post("/repos/alice/proj/issues", json={"title": "t", "assignees": ["wolf-1"]})
        assert r.json()["assignee"]["login"] == "wolf-1"
        n = r.json()["number"]
        r = await api.patch(f"/repos/alice/proj/issues/{n}", json={"assignees": []})
        assert r.json()["assignees"] is None
        await gitea.deliveries_settled()
    seen = [
        (h["X-Gitea-Event"], h["X-Gitea-Event-Type"], json.loads(b)["action"])
        for h, b in receiver.received
    ]
    # NewIssue notifies the assignment inside its transaction, before "opened".
    assert seen == [
        ("issues", "issue_assign", "assigned"),
        ("issues", "issues", "opened"),
        ("issues", "issue_assign", "unassigned"),
    ]
    assert n == 1 and gitea.issue("alice", "proj", n)["assignees"] == []
    assert gitea.violations == []


async def test_standin_bodies_have_the_real_webhook_shape(gitea: GiteaStandin) -> None:
    """Every top-level and issue field of the real captures appears in the stand-in's bodies."""
    token = gitea.add_user("alice")
    gitea.add_repo("alice", "proj")
    async with Receiver() as receiver, client(gitea, token) as api:
        await api.post(
            "/repos/alice/proj/hooks",
            json={
                "type": "gitea",
                "active": True,
                "events": ["issues", "issue_comment"],
                "config": {"url": receiver.url, "content_type": "json", "secret": "k"},
            },
        )
        label = (
            await api.post("/repos/alice/proj/labels", json={"name": "bug", "color": "#ee0701"})
        ).json()["id"]
        r = await api.post("/repos/alice/proj/issues", json={"title": "t", "labels": [label]})
        await api.post(
            f"/repos/alice/proj/issues/{r.json()['number']}/comments", json={"body": "c"}
        )
        await gitea.deliveries_settled()
    ours = {
        (h["X-Gitea-Event-Type"], json.loads(b)["action"]): json.loads(b)
        for h, b in receiver.received
    }
    for real_file, key in (
        ("issues.opened.json", ("issues", "opened")),
        ("issues.label_updated.json", ("issue_label", "label_updated")),
        ("issue_comment.created.json", ("issue_comment", "created")),
    ):
        real = json.loads((WEBHOOKS / real_file).read_bytes())
        mine = ours[key]
        assert set(real) <= set(mine), real_file
        assert set(real["issue"]) <= set(mine["issue"]), real_file
        if "comment" in real:
            assert set(real["comment"]) <= set(mine["comment"])
    raw = receiver.received[0][1]
    assert raw.startswith(b'{\n  "action": "opened",\n  "number": 1,')  # MarshalIndent
    assert gitea.violations == []


# ---- faults -----------------------------------------------------------------------------------


async def test_fault_injection(gitea: GiteaStandin) -> None:
    token = gitea.add_user("alice")
    gitea.add_repo("alice", "proj")
    async with client(gitea, token) as api:
        gitea.fail_next(2)
        assert [(await api.get("/version")).status_code for _ in range(3)] == [503, 503, 200]
        gitea.fail_next(1, status=500)
        assert (await api.get("/version")).status_code == 500

        gitea.drop_next(1)
        with pytest.raises(httpx.RemoteProtocolError):
            await api.post("/repos/alice/proj/issues", json={"title": "dropped"})
        assert (await api.get("/version")).status_code == 200

        loop = asyncio.get_running_loop()
        gitea.delay_next(1, 0.3)
        started = loop.time()
        assert (await api.get("/version")).status_code == 200
        assert loop.time() - started >= 0.3
    async with client(gitea, token, timeout=httpx.Timeout(5.0, read=0.05)) as impatient:
        gitea.delay_next(1, 0.5)
        with pytest.raises(httpx.ReadTimeout):
            await impatient.get("/version")
    assert gitea.requests.count(("GET", "/api/v1/version")) == 7
    with pytest.raises(KeyError):
        gitea.issue("alice", "proj", 1)  # a dropped request is never applied
    assert gitea.violations == []


# ---- the swagger as referee ------------------------------------------------------------------


async def test_schema_breaking_requests_are_422_and_recorded(gitea: GiteaStandin) -> None:
    token = gitea.add_user("alice")
    gitea.add_repo("alice", "proj")
    gitea.add_label("alice", "proj", "bug")
    async with client(gitea, token) as api:
        r = await api.post("/repos/alice/proj/issues", json={"title": "x", "labels": ["bug"]})
        assert r.status_code == 422 and is_gitea_error(r.json())
        assert len(gitea.violations) == 1 and "labels/0" in gitea.violations[0]
        assert (
            await api.post("/repos/alice/proj/issues", json={"body": "no title"})
        ).status_code == 422
        assert (
            await api.post("/repos/alice/proj/issues", json={"title": "x", "lables": [1]})
        ).status_code == 422
        assert (
            await api.get("/repos/alice/proj/issues", params={"per_page": 50})
        ).status_code == 422
        assert (await api.get("/repos/alice/proj/issues/abc")).status_code == 422
        assert (
            await api.patch("/repos/alice/proj/issues/1", json={"content_version": "0"})
        ).status_code == 422
    assert len(gitea.violations) == 6
    assert gitea.requests[-1] == ("PATCH", "/api/v1/repos/alice/proj/issues/1")
    assert gitea.warnings == []
    with pytest.raises(KeyError):
        gitea.issue("alice", "proj", 1)  # nothing was created


async def test_a_normal_session_touches_every_endpoint_and_stays_valid(
    gitea: GiteaStandin,
) -> None:
    root = gitea.add_user("root", admin=True)
    alice = gitea.add_user("alice")
    gitea.add_repo("alice", "proj", private=True)
    gitea.add_issue("alice", "proj", "a pull request", is_pull=True)
    async with (
        Receiver() as receiver,
        client(gitea, alice) as api,
        client(gitea, root) as admin,
        client(gitea) as anon,
    ):
        assert (await anon.get("/version")).json()["version"] == gitea.version
        await admin.post(
            "/admin/users",
            json={
                "username": "bob",
                "email": "bob@x.local",
                "password": "bob-pass-1",
                "must_change_password": False,
            },
        )
        bob = (
            await anon.post(
                "/users/bob/tokens",
                json={"name": "t", "scopes": ["all"]},
                headers=basic("bob", "bob-pass-1"),
            )
        ).json()["sha1"]
        spare = await anon.post(
            "/users/bob/tokens",
            json={"name": "spare", "scopes": ["read:issue"]},
            headers=basic("bob", "bob-pass-1"),
        )
        await anon.get("/users/bob/tokens", headers=basic("bob", "bob-pass-1"))
        await anon.delete(
            f"/users/bob/tokens/{spare.json()['id']}", headers=basic("bob", "bob-pass-1")
        )
        await admin.patch("/admin/users/bob", json={"source_id": 0, "login_name": "bob"})
        await admin.get("/users/bob")
        await api.put("/repos/alice/proj/collaborators/bob", json={"permission": "write"})
        await api.get("/repos/alice/proj/collaborators/bob")
        await api.get("/repos/alice/proj/collaborators/bob/permission")
        await api.get("/user")
        await api.get("/repos/alice/proj")
        await api.post(
            "/repos/alice/proj/hooks",
            json={
                "type": "gitea",
                "active": True,
                "events": ["issues"],
                "config": {"url": receiver.url, "content_type": "json", "secret": "k"},
            },
        )
        await api.get("/repos/alice/proj/hooks")
        label = (
            await api.post("/repos/alice/proj/labels", json={"name": "bug", "color": "ee0701"})
        ).json()["id"]
        await api.get("/repos/alice/proj/labels")
        n = (
            await api.post(
                "/repos/alice/proj/issues",
                json={"title": "t", "labels": [label], "assignees": ["bob"]},
            )
        ).json()["number"]
        await api.get("/repos/alice/proj/issues", params={"state": "all", "type": "issues"})
        await api.get(f"/repos/alice/proj/issues/{n}")
        await api.patch(f"/repos/alice/proj/issues/{n}", json={"body": "b", "assignees": []})
        path = f"/repos/alice/proj/issues/{n}/labels"
        await api.get(path)
        await api.post(path, json={"labels": ["bug"]})
        await api.put(path, json={"labels": [label]})
        await api.delete(f"{path}/{label}")
        await api.delete(path)
        async with client(gitea, bob) as worker:
            cid = (
                await worker.post(f"/repos/alice/proj/issues/{n}/comments", json={"body": "done"})
            ).json()["id"]
            await worker.post("/repos/alice/proj/issues/1/comments", json={"body": "on a PR"})
        await api.get(f"/repos/alice/proj/issues/{n}/comments")
        await api.get(f"/repos/alice/proj/issues/comments/{cid}")
        await api.delete(f"/repos/alice/proj/issues/comments/{cid}")
        await gitea.deliveries_settled()
    exercised = set()
    for method, path in gitea.requests:
        found = gitea.validator.match(path)
        assert found is not None
        exercised.add((method, found.template))
    assert exercised == implemented_operations()
    assert gitea.violations == []
    assert all(d.status == 200 for d in gitea.deliveries) and len(gitea.deliveries) >= 8


# ---- the reference data ------------------------------------------------------------------------


def test_real_webhook_bodies_parse_and_their_signatures_match() -> None:
    deliveries = json.loads((WEBHOOKS / "deliveries.json").read_text())
    secret = deliveries["secret"]
    lenient = SwaggerValidator(strict_fields=False)
    for d in deliveries["deliveries"]:
        raw = (WEBHOOKS / d["file"]).read_bytes()
        assert len(raw) == d["bytes"]
        body = json.loads(raw)
        assert body["action"] == d["action"]
        headers = d["headers"]
        assert headers["X-Gitea-Signature"] == webhook_signature(secret, raw)
        assert headers["X-Hub-Signature-256"] == "sha256=" + webhook_signature(secret, raw)
        assert (
            headers["X-Hub-Signature"]
            == "sha1=" + hmac.new(secret.encode(), raw, hashlib.sha1).hexdigest()
        )
        for part, definition in (
            ("issue", "Issue"),
            ("comment", "Comment"),
            ("repository", "Repository"),
            ("sender", "User"),
        ):
            if part in body:
                assert lenient.validate_definition(definition, body[part]) == [], d["file"]


def test_missing_swagger_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HERMES_SHARED_DIR", str(tmp_path))
    with pytest.raises(SwaggerNotFoundError, match="HERMES_SHARED_DIR"):
        SwaggerValidator()
