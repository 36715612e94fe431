"""The forge's webhook deliveries against real ones (../shared/gitea/webhooks), field by field.

Every object in a recorded delivery is compared with the same object in the forge's
delivery of the same event: the same keys and, key by key, the same JSON types (values
differ: ids, times, names). The captures come from Gitea 1.16 (2022); the fields Gitea
added since, and the ones it stopped sending, are listed here by place, each one checked
against the 1.26 swagger, so a difference is either explained below or a failure.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from fleettest.gitea_schema import SwaggerValidator
from fleettest.gitea_standin import GiteaStandin
from tests.forge.shared import DELIVERIES, body_of

# Where a place holds an object of a swagger definition (None: the payload's top level).
_DEFINITION_AT: dict[str, str | None] = {
    "": None,
    "issue": "Issue",
    "issue/user": "User",
    "issue/assignee": "User",
    "issue/assignees/*": "User",
    "issue/labels/*": "Label",
    "issue/repository": "RepositoryMeta",
    "comment": "Comment",
    "comment/user": "User",
    "repository": "Repository",
    "repository/owner": "User",
    "repository/permissions": "Permission",
    "repository/internal_tracker": "InternalTracker",
    "sender": "User",
}
# Fields newer than the 1.16 captures (all in the 1.26 swagger, or Gitea's payload structs).
_NEWER: dict[str | None, frozenset[str]] = {
    None: frozenset({"commit_id"}),  # IssuePayload.CommitID
    "Issue": frozenset({"assets", "content_version", "pin_order", "projects", "time_estimate"}),
    "User": frozenset({"html_url", "login_name", "source_id"}),
    "Comment": frozenset({"assets"}),
    "Label": frozenset({"exclusive", "is_archived"}),
    "Repository": frozenset(
        {
            "allow_fast_forward_only_merge",
            "allow_manual_merge",
            "allow_rebase_update",
            "archived_at",
            "autodetect_manual_merge",
            "branch_count",
            "default_allow_maintainer_edit",
            "default_delete_branch_after_merge",
            "default_target_branch",
            "has_actions",
            "has_code",
            "has_packages",
            "has_releases",
            "language",
            "languages_url",
            "licenses",
            "link",
            "object_format_name",
            "projects_mode",
            "topics",
            "url",
        }
    ),
}
# Fields the captures have that Gitea now leaves out when empty (`json:",omitempty"` pointers).
_NOW_OMITTED: dict[str | None, frozenset[str]] = {
    "Repository": frozenset({"parent", "repo_transfer"}),
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _place(path: list[str]) -> str:
    return "/".join("*" if p.isdigit() else p for p in path)


def compare(real: Any, ours: Any, path: list[str] | None = None) -> list[str]:
    """Differences in keys and JSON types between a real delivery and ours."""
    path = path or []
    where = "/".join(path) or "<top>"
    if _json_type(real) != _json_type(ours):
        return [f"{where}: Gitea sent {_json_type(real)}, the forge {_json_type(ours)}"]
    if isinstance(real, list):
        if real and ours:
            return compare(real[0], ours[0], [*path, "0"])
        if real and not ours:
            return [f"{where}: Gitea sent items, the forge none (scenario mismatch)"]
        return []
    if not isinstance(real, dict):
        return []
    definition = _DEFINITION_AT.get(_place(path), "?")
    problems = []
    for key in sorted(set(real) - set(ours)):
        if key not in _NOW_OMITTED.get(definition, frozenset()):
            problems.append(f"{where}: {key}: in Gitea's delivery, not in the forge's")
    for key in sorted(set(ours) - set(real)):
        if key not in _NEWER.get(definition, frozenset()):
            problems.append(f"{where}: {key}: in the forge's delivery, not in Gitea's")
    for key in sorted(set(real) & set(ours)):
        problems += compare(real[key], ours[key], [*path, key])
    return problems


class Receiver:
    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        return web.Response()

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


@pytest.fixture(scope="module")
async def generated() -> AsyncIterator[dict[str, tuple[dict[str, str], dict[str, Any]]]]:
    """The forge's deliveries for the recorded events, by recorded file name.

    The scenario matches each capture where JSON types depend on it: `issues.opened` on an
    issue without assignee or labels, `label_updated` with one label and one assignee,
    the comment on an assigned issue without labels.
    """
    async with GiteaStandin() as gitea, Receiver() as receiver:
        token = gitea.add_user("example")
        gitea.add_repo("example", "example")
        headers = {"Authorization": f"token {token}"}
        async with httpx.AsyncClient(base_url=gitea.url + "/api/v1", headers=headers) as api:
            r = await api.post(
                "/repos/example/example/hooks",
                json={
                    "type": "gitea",
                    "active": True,
                    "events": ["issues", "issue_comment"],
                    "config": {"url": receiver.url, "content_type": "json", "secret": "k"},
                },
            )
            assert r.status_code == 201, r.text
            label = (
                await api.post(
                    "/repos/example/example/labels", json={"name": "bug", "color": "ee0701"}
                )
            ).json()["id"]
            plain = (await api.post("/repos/example/example/issues", json={"title": "a"})).json()
            assigned = {"title": "b", "assignees": ["example"]}
            labelled = (await api.post("/repos/example/example/issues", json=assigned)).json()
            await api.post(
                f"/repos/example/example/issues/{labelled['number']}/labels",
                json={"labels": [label]},
            )
            commented = (await api.post("/repos/example/example/issues", json=assigned)).json()
            await api.post(
                f"/repos/example/example/issues/{commented['number']}/comments",
                json={"body": "example"},
            )
            await gitea.deliveries_settled()
        assert gitea.violations == []
        sent = {d.delivery_id: dict(d.headers) for d in gitea.deliveries}
    by_kind: dict[tuple[str, str, int], tuple[dict[str, str], dict[str, Any]]] = {}
    for head, raw in receiver.received:
        payload = json.loads(raw)
        key = (head["X-Gitea-Event-Type"], payload["action"], payload["issue"]["number"])
        by_kind[key] = (sent[head["X-Gitea-Delivery"]], payload)  # as set, not as transported
    yield {
        "issues.opened.json": by_kind[("issues", "opened", plain["number"])],
        "issues.label_updated.json": by_kind[("issue_label", "label_updated", labelled["number"])],
        "issue_comment.created.json": by_kind[("issue_comment", "created", commented["number"])],
    }


@pytest.mark.parametrize("file", sorted(d["file"] for d in DELIVERIES["deliveries"]))
def test_generated_delivery_matches_the_recorded_one_field_by_field(
    file: str, generated: dict[str, tuple[dict[str, str], dict[str, Any]]]
) -> None:
    recorded = next(d for d in DELIVERIES["deliveries"] if d["file"] == file)
    real = json.loads(body_of(recorded))
    head, ours = generated[file]
    assert compare(real, ours) == []
    # The headers: the same names (the capture leaves out the User-Agent, which Gitea sets
    # to "GiteaServer"), and the same event names for the same kind of event.
    assert set(recorded["headers"]) <= set(head)
    assert set(head) - set(recorded["headers"]) == {"User-Agent"}
    for name in ("X-Gitea-Event", "X-Gitea-Event-Type", "X-GitHub-Event", "X-Gogs-Event"):
        assert head[name] == recorded["headers"][name], name


def test_every_listed_difference_is_real_swagger() -> None:
    """The allowances above name fields of the current API, not inventions."""
    doc = SwaggerValidator().doc["definitions"]
    for definition, names in (*_NEWER.items(), *_NOW_OMITTED.items()):
        if definition is not None:
            assert names <= set(doc[definition]["properties"]), definition


def test_compare_catches_a_missing_field_and_a_changed_type() -> None:
    real = {"issue": {"id": 1, "user": {"login": "a", "id": 2}}, "is_pull": False}
    assert compare(real, real) == []
    assert compare(real, {"issue": {"id": "1", "user": {"id": 2}}, "is_pull": False}) == [
        "issue/id: Gitea sent integer, the forge string",
        "issue/user: login: in Gitea's delivery, not in the forge's",
    ]
    assert compare(real, {**real, "extra": 1}) == [
        "<top>: extra: in the forge's delivery, not in Gitea's"
    ]
