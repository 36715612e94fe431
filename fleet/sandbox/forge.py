"""The sandbox forge: the part of Gitea's API (1.26) the fleet uses, persisted in SQLite.

`fleet up` runs it so that forge commands, webhooks and burns work on a machine without
Gitea. It keeps its data in one SQLite file under the state directory (issues, comments,
labels, hooks, users and tokens survive a restart) and is served on a stable port. Point
`gitea:` at a real Gitea for work that must last.

It follows Gitea's semantics as read from Gitea's source, including the ones that bite a
client:

* `GET .../issues` lists pull requests too unless `type=issues`; `limit` defaults to 30 and is
  capped at 50; `X-Total-Count` and `Link` are set as `SetLinkHeader` formats them.
* Several `labels` names are ANDed, and every id that carries a requested name is required
  (two labels named `bug` means an issue must carry both); names that do not exist are
  dropped, so `labels=<unknown>` lists every issue.
* `CreateIssueOption.labels` are ids; ids that are not this repo's are silently dropped (201),
  as are labels and assignees sent by a user without write access (`strict_label_ids=True`
  answers 422 instead). Label names are not unique: creating a second `bug` succeeds.
* Issue-label endpoints take ids or names (1.22+), not both (400); unknown ones are ignored.
* Titles longer than 255 bytes are cut to 255 with "…" (`EllipsisDisplayString`), in create
  and in `PATCH`.
* `PATCH` applies its parts in Gitea's order, each written as it goes: title, body (a stale
  `content_version` answers 409 here, after the title was written), assignees, state (an
  unknown state answers 412). `content_version` starts at 0 and is bumped by every `PATCH`
  that carries `body`.
* Listing or creating comments on an issue that does not exist answers 500 with an empty
  message (Gitea 1.23 does not map its not-found error there); `GET` of the issue says 404.
* Admin-created users must change their password unless `must_change_password: false`, and
  until then every API call they make answers 403. Tokens are listed, created and deleted
  with basic auth only (the user's own, or a site admin's for anyone), need at least one
  scope, are held to their scopes, and report them normalised (write implies read).
* A user disabled with `prohibit_login` (or `active: false`) keeps its tokens, but every
  request made with them answers 403; a prohibited user's password answers 401 (an inactive
  one's 403). A deleted token is 401.
* Collaborators get one access mode (read, write, admin) for the whole repository; labelling
  an issue needs write, commenting read. A private repository is 404 to a stranger.
* Hooks default to inactive; the `issues` event also subscribes to assign, label, milestone
  and comment events. Deliveries are signed, sent in order per hook, and never retried.
* Event comments (close, reopen, label, title, assignee changes) consume comment ids but are
  not listed, so comment ids are global and increasing but not contiguous.
* User objects carry `username` (equal to `login`), as Gitea's `User.MarshalJSON` adds it.

Subclasses (the tests' spec-checking stand-in) hook in at `_intercept`, `_request_problems`,
`_unrouted`, `_outside`, `_checked`, `_payload_checked` and `_warn`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import hmac
import json
import logging
import re
import secrets
import socket
import sqlite3
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal
from urllib.parse import quote_plus, urlencode

import aiohttp
from aiohttp import web

from fleetcore.db import open_private_db
from fleetcore.forge.scopes import InvalidScope, grants, normalize_scopes

log = logging.getLogger("hermes.sandbox.forge")

API_BASE: Final = "/api/v1"
SANDBOX_VERSION: Final = "1.26.0+hermes-sandbox"
DEFAULT_PORT: Final = 3000  # Gitea's own default HTTP port

Perm = Literal["none", "read", "write", "admin"]
_PERM_RANK: dict[str, int] = {"none": 0, "read": 1, "write": 2, "admin": 3}
_ZERO_TIME = "0001-01-01T00:00:00Z"
_WEBHOOK_TIMEOUT_S = 5.0  # Gitea's [webhook] DELIVER_TIMEOUT default
_MIN_PASSWORD_LENGTH = 8  # Gitea's [security] MIN_PASSWORD_LENGTH default
_DEFAULT_PAGE_SIZE = 30  # [api] DEFAULT_PAGING_NUM
_MAX_PAGE_SIZE = 50  # [api] MAX_RESPONSE_ITEMS
_TITLE_LIMIT = 255  # issue.title is VARCHAR(255)
_RESERVED_NAMES = frozenset(
    {
        ".",
        "..",
        "-",
        "admin",
        "api",
        "assets",
        "attachments",
        "avatar",
        "avatars",
        "captcha",
        "commits",
        "debug",
        "error",
        "explore",
        "favicon.ico",
        "ghost",
        "issues",
        "login",
        "manifest.json",
        "metrics",
        "milestones",
        "new",
        "notifications",
        "org",
        "pulls",
        "raw",
        "repo",
        "repo-avatars",
        "robots.txt",
        "search",
        "serviceworker.js",
        "ssh_info",
        "swagger.v1.json",
        "user",
        "v2",
        "gitea-actions",
    }
)
_USERNAME = re.compile(r"[\da-zA-Z]([-._]?[\da-zA-Z])*")
_COLOR = re.compile(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
# Gitea's addHook: which stored events each requested name switches on.
_ISSUE_EVENTS = ("issues", "issue_assign", "issue_label", "issue_milestone", "issue_comment")
_PR_EVENTS = (
    "pull_request",
    "pull_request_assign",
    "pull_request_label",
    "pull_request_milestone",
    "pull_request_comment",
    "pull_request_review_approved",
    "pull_request_review_rejected",
    "pull_request_review_comment",
    "pull_request_sync",
    "pull_request_review_request",
)
_OTHER_EVENTS = (
    "create",
    "delete",
    "fork",
    "push",
    "release",
    "repository",
    "wiki",
    "package",
    "status",
    "workflow_run",
    "workflow_job",
    "issues_only",
    "pull_request_only",
)
_EVENT_HEADER = {  # HookEventType.Event(): the broad X-Gitea-Event for each specific type
    "issue_assign": "issues",
    "issue_label": "issues",
    "issue_milestone": "issues",
    "pull_request_comment": "issue_comment",
    "pull_request_assign": "pull_request",
    "pull_request_label": "pull_request",
    "pull_request_milestone": "pull_request",
}


class _NoBody:
    """Marks "no body at all", which differs from a JSON `null` body."""

    _instance: _NoBody | None = None

    def __new__(cls) -> _NoBody:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_BODY"

    def __bool__(self) -> bool:
        return False


NO_BODY: Final = _NoBody()


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _ts(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_ts(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def go_json(value: Any, *, indent: int | None = None) -> str:
    """JSON as Go's encoder writes it: raw UTF-8, with <, >, & and U+2028/9 escaped."""
    text = json.dumps(
        value, ensure_ascii=False, indent=indent, separators=(",", ": ") if indent else (",", ":")
    )
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text


def webhook_signature(secret: str | bytes, body: bytes) -> str:
    """X-Gitea-Signature: hex HMAC-SHA256 of the raw body with the hook's secret."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def ellipsis_display_string(text: str, limit: int) -> str:
    """Gitea's util.EllipsisDisplayString: at most `limit` bytes' worth, then "…".

    Lengths are counted as Gitea does: the input in UTF-8 bytes, the kept part in display
    width (ASCII 1, anything else 2), keeping 3 for the ellipsis; a tail of at most 3 runes
    that still fits is kept instead of cut.
    """
    if len(text.encode("utf-8", "surrogatepass")) <= limit:
        return text
    pos = used = offset = index = 0
    for char in text:
        size = len(char.encode("utf-8", "surrogatepass"))
        pos = index
        width = 1 if ord(char) < 128 else 2
        if used + width + 3 > limit:
            break
        used += width
        offset += size
        index += size
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) - pos <= 12:
        count = width = 0
        for char in raw[pos:].decode("utf-8", "surrogatepass"):
            if count >= 4:
                break
            width += 1 if ord(char) < 128 else 2
            count += 1
        if count <= 3 and used + width <= limit:
            return text
    kept = raw[:offset].decode("utf-8", "surrogatepass")
    return kept if limit < 3 else kept + "…"


# ---- state -------------------------------------------------------------------------------


@dataclass
class _User:
    id: int
    login: str
    email: str
    password: str
    is_admin: bool
    must_change_password: bool
    created: datetime
    full_name: str = ""
    visibility: str = "public"
    restricted: bool = False
    login_name: str = ""
    source_id: int = 0
    prohibit_login: bool = False  # EditUserOption.prohibit_login: how an admin disables a user
    active: bool = True


@dataclass
class _Token:
    id: int
    name: str
    user_id: int
    sha1: str
    scopes: tuple[str, ...]
    created: datetime


@dataclass
class _Label:
    id: int
    repo_id: int
    name: str
    color: str  # stored with '#', answered without, as Gitea does
    description: str = ""
    exclusive: bool = False
    is_archived: bool = False


@dataclass
class _Comment:
    id: int
    repo_id: int
    number: int
    kind: str  # "comment" or an event comment: close, reopen, label, title, assignees
    poster_id: int
    body: str
    created: datetime
    updated: datetime


@dataclass
class _Issue:
    id: int
    repo_id: int
    number: int
    title: str
    body: str
    poster_id: int
    is_pull: bool
    created: datetime
    updated: datetime
    state: str = "open"
    closed_at: datetime | None = None
    label_ids: set[int] = field(default_factory=set)
    assignee_ids: list[int] = field(default_factory=list)
    content_version: int = 0
    comment_ids: list[int] = field(default_factory=list)


@dataclass
class _Hook:
    id: int
    repo_id: int
    type: str
    url: str
    content_type: str
    secret: str
    events: frozenset[str]
    active: bool
    branch_filter: str
    authorization_header: str
    created: datetime
    updated: datetime
    name: str = ""


@dataclass
class _Repo:
    id: int
    owner_id: int
    name: str
    private: bool
    created: datetime
    collaborators: dict[int, Perm] = field(default_factory=dict)
    issues: dict[int, _Issue] = field(default_factory=dict)
    next_index: int = 1
    hook_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Delivery:
    """One webhook POST the forge made, and what came of it (status None: no answer)."""

    hook_id: int
    url: str
    event: str
    event_type: str
    action: str
    delivery_id: str
    headers: Mapping[str, str]
    body: bytes
    status: int | None
    error: str | None = None


@dataclass
class Resp:
    status: int
    body: Any = NO_BODY
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    def __init__(self, status: int, body: Any = NO_BODY) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


@dataclass
class Ctx:
    method: str
    template: str
    params: dict[str, str]
    query: dict[str, list[str]]
    body: Any
    doer: _User | None
    token: _Token | None
    is_basic: bool
    errors: list[str]
    request: web.Request

    def q(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default

    def q_int(self, name: str) -> int:
        """ctx.FormInt: anything unparsable is 0, as in Gitea."""
        try:
            return int(self.q(name, "0"))
        except ValueError:
            return 0

    def obj(self) -> dict[str, Any]:
        return self.body if isinstance(self.body, dict) else {}


# ---- persistence --------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    format INTEGER NOT NULL,
    data TEXT NOT NULL
);
"""
_FORMAT = 1


def _dump_issue(i: _Issue) -> dict[str, Any]:
    return {
        "id": i.id,
        "repo_id": i.repo_id,
        "number": i.number,
        "title": i.title,
        "body": i.body,
        "poster_id": i.poster_id,
        "is_pull": i.is_pull,
        "created": _ts(i.created),
        "updated": _ts(i.updated),
        "state": i.state,
        "closed_at": _ts(i.closed_at),
        "label_ids": sorted(i.label_ids),
        "assignee_ids": list(i.assignee_ids),
        "content_version": i.content_version,
        "comment_ids": list(i.comment_ids),
    }


def _load_issue(d: dict[str, Any]) -> _Issue:
    created, updated = _parse_ts(d["created"]), _parse_ts(d["updated"])
    assert created is not None and updated is not None
    return _Issue(
        id=d["id"],
        repo_id=d["repo_id"],
        number=d["number"],
        title=d["title"],
        body=d["body"],
        poster_id=d["poster_id"],
        is_pull=d["is_pull"],
        created=created,
        updated=updated,
        state=d["state"],
        closed_at=_parse_ts(d["closed_at"]),
        label_ids=set(d["label_ids"]),
        assignee_ids=list(d["assignee_ids"]),
        content_version=d["content_version"],
        comment_ids=list(d["comment_ids"]),
    )


def _when(d: dict[str, Any], key: str) -> datetime:
    moment = _parse_ts(d[key])
    assert moment is not None
    return moment


class _Store:
    """The forge's state as one JSON snapshot in SQLite, replaced in one transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = open_private_db(path, _SCHEMA)

    def load(self) -> dict[str, Any] | None:
        row = self.db.execute("SELECT format, data FROM snapshot WHERE id = 1").fetchone()
        if row is None:
            return None
        if row[0] != _FORMAT:
            raise RuntimeError(f"{self.path}: snapshot format {row[0]}, expected {_FORMAT}")
        data: dict[str, Any] = json.loads(row[1])
        return data

    def save(self, data: dict[str, Any]) -> None:
        text = json.dumps(data, separators=(",", ":"))
        with contextlib.closing(self.db.cursor()) as cur:
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.execute(
                    "INSERT OR REPLACE INTO snapshot (id, format, data) VALUES (1, ?, ?)",
                    (_FORMAT, text),
                )
            except sqlite3.Error:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def close(self) -> None:
        self.db.close()


# ---- routing ----------------------------------------------------------------------------

Handler = Callable[["SandboxForge", Ctx], Resp]
_ROUTES: dict[tuple[str, str], Handler] = {}


def _route(method: str, template: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _ROUTES[(method, template)] = fn
        return fn

    return register


@dataclass(frozen=True)
class Route:
    template: str
    params: dict[str, str]
    handlers: Mapping[str, Handler]


def compile_template(template: str) -> tuple[re.Pattern[str], tuple[str, ...], int]:
    """A route template as (regex, parameter names, number of literal segments).

    Callers try templates with more literal segments first, so /issues/comments/{id} is
    matched before /issues/{index}/...; the spec-checking stand-in in the tests reads the
    swagger's templates with the same function.
    """
    names: list[str] = []
    parts = []
    literals = 0
    for segment in template.strip("/").split("/"):
        param = re.fullmatch(r"\{([^{}]+)\}", segment)
        if param:
            names.append(param.group(1))
            parts.append("([^/]+)")
        else:
            literals += 1
            parts.append(re.escape(segment))
    return re.compile("/" + "/".join(parts)), tuple(names), literals


@functools.cache
def _compiled_routes() -> tuple[tuple[str, re.Pattern[str], tuple[str, ...]], ...]:
    """The route templates as regexes, the most literal segments first."""
    out = []
    for template in {t for _, t in _ROUTES}:
        regex, names, literals = compile_template(template)
        out.append((-literals, template, regex, names))
    out.sort(key=lambda t: (t[0], t[1]))
    return tuple((template, regex, names) for _, template, regex, names in out)


def match_route(relative: str) -> Route | None:
    """The route template that a path below /api/v1 instantiates, with its parameters."""
    for template, regex, names in _compiled_routes():
        found = regex.fullmatch(relative)
        if found:
            handlers = {m: fn for (m, t), fn in _ROUTES.items() if t == template}
            return Route(template, dict(zip(names, found.groups(), strict=True)), handlers)
    return None


def implemented_operations() -> frozenset[tuple[str, str]]:
    """(method, path template below /api/v1) of every endpoint the forge serves."""
    return frozenset(_ROUTES)


# What Go's decoder accepts in each request body (Gitea's *Option structs): a value of the
# wrong JSON type fails the binding with 422; unknown fields are dropped silently.
_FORMS: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "/admin/users"): {
        "username": "string",
        "email": "string",
        "password": "string",
        "must_change_password": "bool",
        "full_name": "string",
        "login_name": "string",
        "source_id": "int",
        "visibility": "string",
        "restricted": "bool",
        "send_notify": "bool",
        "created_at": "string",
    },
    ("POST", "/users/{username}/tokens"): {"name": "string", "scopes": "strings"},
    ("PATCH", "/admin/users/{username}"): {
        "source_id": "int",
        "login_name": "string",
        "email": "string",
        "full_name": "string",
        "password": "string",
        "must_change_password": "bool",
        "website": "string",
        "location": "string",
        "description": "string",
        "active": "bool",
        "admin": "bool",
        "allow_git_hook": "bool",
        "allow_import_local": "bool",
        "max_repo_creation": "int",
        "prohibit_login": "bool",
        "allow_create_organization": "bool",
        "restricted": "bool",
        "visibility": "string",
    },
    ("PUT", "/repos/{owner}/{repo}/collaborators/{collaborator}"): {"permission": "string"},
    ("POST", "/repos/{owner}/{repo}/issues"): {
        "title": "string",
        "body": "string",
        "assignee": "string",
        "assignees": "strings",
        "labels": "ints",
        "milestone": "int",
        "projects": "ints",
        "closed": "bool",
        "ref": "string",
        "due_date": "string",
    },
    ("PATCH", "/repos/{owner}/{repo}/issues/{index}"): {
        "title": "string",
        "body": "string",
        "assignee": "string",
        "assignees": "strings",
        "state": "string",
        "content_version": "int",
        "milestone": "int",
        "projects": "ints",
        "ref": "string",
        "due_date": "string",
        "unset_due_date": "bool",
    },
    ("POST", "/repos/{owner}/{repo}/issues/{index}/labels"): {"labels": "list"},
    ("PUT", "/repos/{owner}/{repo}/issues/{index}/labels"): {"labels": "list"},
    ("POST", "/repos/{owner}/{repo}/labels"): {
        "name": "string",
        "color": "string",
        "description": "string",
        "exclusive": "bool",
        "is_archived": "bool",
    },
    ("POST", "/repos/{owner}/{repo}/issues/{index}/comments"): {"body": "string"},
    ("POST", "/repos/{owner}/{repo}/hooks"): {
        "type": "string",
        "config": "object",
        "events": "strings",
        "active": "bool",
        "branch_filter": "string",
        "authorization_header": "string",
        "name": "string",
    },
}


def _kind_ok(kind: str, value: Any) -> bool:
    if value is None:  # Go decodes null as the zero value
        return True
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return is_int
    if kind == "object":
        return isinstance(value, dict)
    if not isinstance(value, list):
        return False
    if kind == "ints":
        return all(isinstance(x, int) and not isinstance(x, bool) for x in value)
    if kind == "strings":
        return all(isinstance(x, str) for x in value)
    return True  # "list": any items


def form_problems(method: str, template: str, body: Any) -> list[str]:
    """What Go's JSON binding would refuse in a request body (wrong types), in words."""
    spec = _FORMS.get((method, template))
    if spec is None or body is NO_BODY or body is None:
        return []
    if not isinstance(body, dict):
        return [f"{method} {template}: the body must be a JSON object"]
    return [
        f"{method} {template}: {name}: expected {kind}"
        for name, kind in spec.items()
        if name in body and not _kind_ok(kind, body[name])
    ]


# ---- the forge ----------------------------------------------------------------------------


class SandboxForge:
    """Gitea's API on 127.0.0.1; seed and inspect it with the synchronous helpers.

    `db_path`: the SQLite file that keeps everything across restarts (None: in memory).
    `port`: where to listen (0: any free port); if it is taken, a free one is used instead
    when `port_fallback` is true, else construction fails with the `OSError`. The socket
    is bound at construction, so `port` and `url` hold from then on (the kernel's pick, no
    probe); `start` serves on it. `url` is the server root (clients append /api/v1).
    """

    def __init__(
        self,
        *,
        db_path: Path | None = None,
        port: int = 0,
        port_fallback: bool = True,
        version: str = SANDBOX_VERSION,
        strict_label_ids: bool = False,
        keep_deliveries: int | None = 1000,
    ) -> None:
        self.version = version
        self.strict_label_ids = strict_label_ids
        self.requested_port = port
        self.port_fallback = port_fallback
        self._sock: socket.socket | None = self._bind_socket()
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.deliveries: deque[Delivery] = deque(maxlen=keep_deliveries)
        self._users: dict[int, _User] = {}
        self._tokens: dict[str, _Token] = {}
        self._repos: dict[int, _Repo] = {}
        self._labels: dict[int, _Label] = {}
        self._comments: dict[int, _Comment] = {}
        self._hooks: dict[int, _Hook] = {}
        self._next: dict[str, int] = {
            k: 1 for k in ("user", "token", "repo", "issue", "label", "comment", "hook")
        }
        try:
            self._store = _Store(db_path) if db_path is not None else None
            if self._store is not None:
                snapshot = self._store.load()
                if snapshot is not None:
                    self._restore(snapshot)
        except BaseException:
            self._sock.close()
            raise
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._hook_tail: dict[int, asyncio.Task[None]] = {}

    # ---- lifecycle ----------------------------------------------------------------------

    def _bind_socket(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self.requested_port))
        except OSError:
            if not self.port_fallback or self.requested_port == 0:
                sock.close()
                raise
            log.warning(
                "sandbox_forge.port_taken",
                extra={"port": self.requested_port},
            )
            sock.bind(("127.0.0.1", 0))
        return sock

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("already started")
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        sock = self._sock or socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock = None
        try:
            if sock.getsockname()[1] == 0:  # started again after a stop: the same port
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("127.0.0.1", self.port))
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._runner = runner
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=_WEBHOOK_TIMEOUT_S)
        )

    async def stop(self) -> None:
        for task in list(self._pending):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._store is not None:
            self._persist()

    def close(self) -> None:
        """Release the database and the port (after `stop`); the forge is done with."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._store is not None:
            self._store.close()
            self._store = None

    async def __aenter__(self) -> SandboxForge:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
        self.close()

    @property
    def app_url(self) -> str:
        """Gitea's ROOT_URL (AppURL), which always ends with a slash."""
        return self.url + "/"

    @property
    def swagger_url(self) -> str:
        return self.app_url + "api/swagger"

    # ---- persistence --------------------------------------------------------------------

    def _snapshot(self) -> dict[str, Any]:
        return {
            "next": dict(self._next),
            "users": [
                {
                    "id": u.id,
                    "login": u.login,
                    "email": u.email,
                    "password": u.password,
                    "is_admin": u.is_admin,
                    "must_change_password": u.must_change_password,
                    "created": _ts(u.created),
                    "full_name": u.full_name,
                    "visibility": u.visibility,
                    "restricted": u.restricted,
                    "login_name": u.login_name,
                    "source_id": u.source_id,
                    "prohibit_login": u.prohibit_login,
                    "active": u.active,
                }
                for u in self._users.values()
            ],
            "tokens": [
                {
                    "id": t.id,
                    "name": t.name,
                    "user_id": t.user_id,
                    "sha1": t.sha1,
                    "scopes": list(t.scopes),
                    "created": _ts(t.created),
                }
                for t in self._tokens.values()
            ],
            "repos": [
                {
                    "id": r.id,
                    "owner_id": r.owner_id,
                    "name": r.name,
                    "private": r.private,
                    "created": _ts(r.created),
                    "collaborators": {str(k): v for k, v in r.collaborators.items()},
                    "issues": [_dump_issue(i) for i in r.issues.values()],
                    "next_index": r.next_index,
                    "hook_ids": list(r.hook_ids),
                }
                for r in self._repos.values()
            ],
            "labels": [
                {
                    "id": lbl.id,
                    "repo_id": lbl.repo_id,
                    "name": lbl.name,
                    "color": lbl.color,
                    "description": lbl.description,
                    "exclusive": lbl.exclusive,
                    "is_archived": lbl.is_archived,
                }
                for lbl in self._labels.values()
            ],
            "comments": [
                {
                    "id": c.id,
                    "repo_id": c.repo_id,
                    "number": c.number,
                    "kind": c.kind,
                    "poster_id": c.poster_id,
                    "body": c.body,
                    "created": _ts(c.created),
                    "updated": _ts(c.updated),
                }
                for c in self._comments.values()
            ],
            "hooks": [
                {
                    "id": h.id,
                    "repo_id": h.repo_id,
                    "type": h.type,
                    "url": h.url,
                    "content_type": h.content_type,
                    "secret": h.secret,
                    "events": sorted(h.events),
                    "active": h.active,
                    "branch_filter": h.branch_filter,
                    "authorization_header": h.authorization_header,
                    "created": _ts(h.created),
                    "updated": _ts(h.updated),
                    "name": h.name,
                }
                for h in self._hooks.values()
            ],
        }

    def _restore(self, data: dict[str, Any]) -> None:
        self._next = {k: int(v) for k, v in data["next"].items()}
        for u in data["users"]:
            user = _User(
                id=u["id"],
                login=u["login"],
                email=u["email"],
                password=u["password"],
                is_admin=u["is_admin"],
                must_change_password=u["must_change_password"],
                created=_when(u, "created"),
                full_name=u["full_name"],
                visibility=u["visibility"],
                restricted=u["restricted"],
                login_name=u["login_name"],
                source_id=u["source_id"],
                prohibit_login=u.get("prohibit_login", False),  # absent before agent accounts
                active=u.get("active", True),
            )
            self._users[user.id] = user
        for t in data["tokens"]:
            token = _Token(
                t["id"], t["name"], t["user_id"], t["sha1"], tuple(t["scopes"]), _when(t, "created")
            )
            self._tokens[token.sha1] = token
        for r in data["repos"]:
            repo = _Repo(
                id=r["id"],
                owner_id=r["owner_id"],
                name=r["name"],
                private=r["private"],
                created=_when(r, "created"),
                collaborators={int(k): v for k, v in r["collaborators"].items()},
                issues={i["number"]: _load_issue(i) for i in r["issues"]},
                next_index=r["next_index"],
                hook_ids=list(r["hook_ids"]),
            )
            self._repos[repo.id] = repo
        for lbl in data["labels"]:
            self._labels[lbl["id"]] = _Label(**lbl)
        for c in data["comments"]:
            self._comments[c["id"]] = _Comment(
                c["id"],
                c["repo_id"],
                c["number"],
                c["kind"],
                c["poster_id"],
                c["body"],
                _when(c, "created"),
                _when(c, "updated"),
            )
        for h in data["hooks"]:
            self._hooks[h["id"]] = _Hook(
                id=h["id"],
                repo_id=h["repo_id"],
                type=h["type"],
                url=h["url"],
                content_type=h["content_type"],
                secret=h["secret"],
                events=frozenset(h["events"]),
                active=h["active"],
                branch_filter=h["branch_filter"],
                authorization_header=h["authorization_header"],
                created=_when(h, "created"),
                updated=_when(h, "updated"),
                name=h["name"],
            )

    def _persist(self) -> None:
        if self._store is not None:
            self._store.save(self._snapshot())

    def _new_id(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] = value + 1
        return value

    # ---- seeding and inspection (synchronous) -------------------------------------------

    def has_user(self, login: str) -> bool:
        return self._user_by_login(login) is not None

    def add_user(
        self,
        login: str,
        password: str | None = None,
        admin: bool = False,
        *,
        email: str | None = None,
        scopes: Iterable[str] = ("all",),
    ) -> str:
        """Create a ready-to-use user and return an API token for it (scope `all`)."""
        if self._user_by_login(login) is not None:
            raise ValueError(f"user {login!r} exists")
        user = _User(
            id=self._new_id("user"),
            login=login,
            email=email or f"{login}@example.com",
            password=password or secrets.token_urlsafe(16),
            is_admin=admin,
            must_change_password=False,
            created=_now(),
        )
        self._users[user.id] = user
        sha1 = self._new_token(user, "seed", tuple(scopes)).sha1
        self._persist()
        return sha1

    def token(self, login: str, name: str = "seed", scopes: Iterable[str] = ("all",)) -> str:
        """The user's token called `name`, made now if it does not exist yet."""
        user = self._user_by_login(login)
        if user is None:
            raise KeyError(login)
        for token in self._tokens.values():
            if token.user_id == user.id and token.name == name:
                return token.sha1
        sha1 = self._new_token(user, name, tuple(scopes)).sha1
        self._persist()
        return sha1

    def set_password(self, login: str, password: str) -> None:
        """Give a seeded user a known password: the admin's basic auth mints agents' tokens,
        and `add_user` alone leaves a random one nobody knows."""
        user = self._user_by_login(login)
        if user is None:
            raise KeyError(login)
        if len(password) < _MIN_PASSWORD_LENGTH:
            raise ValueError(f"a password has at least {_MIN_PASSWORD_LENGTH} characters")
        user.password = password
        self._persist()

    def add_repo(self, owner: str, name: str, private: bool = False) -> None:
        """Create a repository; an unknown owner is created as a user without a token."""
        user = self._user_by_login(owner)
        if user is None:
            self.add_user(owner)
            user = self._user_by_login(owner)
            assert user is not None
        if self._find_repo(owner, name) is not None:
            raise ValueError(f"repo {owner}/{name} exists")
        repo = _Repo(
            id=self._new_id("repo"), owner_id=user.id, name=name, private=private, created=_now()
        )
        self._repos[repo.id] = repo
        self._persist()

    def has_repo(self, owner: str, name: str) -> bool:
        return self._find_repo(owner, name) is not None

    def add_collaborator(
        self, owner: str, repo: str, login: str, permission: Perm = "write"
    ) -> None:
        user = self._user_by_login(login)
        if user is None:
            raise KeyError(login)
        self._seed_repo(owner, repo).collaborators[user.id] = permission
        self._persist()

    def add_label(
        self, owner: str, repo: str, name: str, color: str = "ee0701", description: str = ""
    ) -> int:
        """Create a repo label (duplicates allowed, as in Gitea) and return its id."""
        r = self._seed_repo(owner, repo)
        label = _Label(
            self._new_id("label"), r.id, name, "#" + color.lstrip("#").lower(), description
        )
        self._labels[label.id] = label
        self._persist()
        return label.id

    def add_issue(
        self,
        owner: str,
        repo: str,
        title: str,
        body: str = "",
        labels: Iterable[str] = (),
        is_pull: bool = False,
        *,
        author: str | None = None,
        state: Literal["open", "closed"] = "open",
    ) -> int:
        """Create an issue (or pull request) without webhooks; missing labels are created."""
        r = self._seed_repo(owner, repo)
        poster = self._user_by_login(author) if author else self._users[r.owner_id]
        if poster is None:
            raise KeyError(author)
        issue = self._new_issue(r, title, body, poster, is_pull)
        for name in labels:
            ids = [lbl.id for lbl in self._repo_labels(r) if lbl.name == name]
            issue.label_ids.add(ids[0] if ids else self.add_label(owner, repo, name))
        if state == "closed":
            issue.state, issue.closed_at = "closed", _now()
        self._persist()
        return issue.number

    def issue(self, owner: str, repo: str, number: int) -> dict[str, Any]:
        """A snapshot of the stored issue: labels by name, state, assignees, comments."""
        i = self._seed_issue(owner, repo, number)
        return {
            "id": i.id,
            "number": i.number,
            "title": i.title,
            "body": i.body,
            "state": i.state,
            "is_pull": i.is_pull,
            "author": self._users[i.poster_id].login,
            "labels": [lbl.name for lbl in self._issue_labels(i)],
            "assignees": [self._users[u].login for u in i.assignee_ids],
            "content_version": i.content_version,
            "closed_at": _ts(i.closed_at),
            "comments": self.comments(owner, repo, number),
        }

    def issue_numbers(self, owner: str, repo: str) -> list[int]:
        return sorted(self._seed_repo(owner, repo).issues)

    def delete_issue(self, owner: str, repo: str, number: int) -> None:
        """Delete an issue with its comments, as an admin would in Gitea's UI."""
        r = self._seed_repo(owner, repo)
        issue = r.issues.pop(number)
        for cid in issue.comment_ids:
            self._comments.pop(cid, None)
        self._persist()

    def comments(self, owner: str, repo: str, number: int) -> list[dict[str, Any]]:
        """The issue's user comments (not event comments), oldest first."""
        i = self._seed_issue(owner, repo, number)
        return [
            {
                "id": c.id,
                "body": c.body,
                "user": self._users[c.poster_id].login,
                "created_at": _ts(c.created),
            }
            for c in self._plain_comments(i)
        ]

    def label_id(self, owner: str, repo: str, name: str) -> int:
        r = self._seed_repo(owner, repo)
        for lbl in self._repo_labels(r):
            if lbl.name == name:
                return lbl.id
        raise KeyError(name)

    def labels(self, owner: str, repo: str) -> list[tuple[int, str]]:
        """(id, name) of every label of the repo, by name then id."""
        return [(lbl.id, lbl.name) for lbl in self._repo_labels(self._seed_repo(owner, repo))]

    def hooks(self, owner: str, repo: str) -> list[dict[str, Any]]:
        r = self._seed_repo(owner, repo)
        return [
            {
                "id": h.id,
                "url": h.url,
                "events": sorted(h.events),
                "active": h.active,
                "secret": h.secret,
                "content_type": h.content_type,
            }
            for h in (self._hooks[i] for i in r.hook_ids)
        ]

    async def deliveries_settled(self) -> None:
        """Wait until every webhook delivery started so far has finished."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    # ---- extension points (the tests' spec-checking wrapper overrides these) -------------

    async def _intercept(self, request: web.Request) -> web.StreamResponse | None:
        """Answer a request before the forge sees it (fault injection); None: go on."""
        return None

    def _request_problems(
        self,
        method: str,
        path: str,
        query: Mapping[str, list[str]],
        body: Any,
        parse_errors: list[str],
    ) -> list[str]:
        """Extra reasons to refuse a request (422 where the body is bound)."""
        return []

    def _outside(self, method: str, path: str) -> Resp:
        """A path outside /api/v1."""
        return Resp(404, {"message": "not found", "url": self.swagger_url})

    def _unrouted(self, method: str, path: str, route: Route | None) -> Resp:
        """A path below /api/v1 that the forge does not serve (or not with this method)."""
        status = 404 if route is None else 405
        return Resp(status, {"message": "not found", "url": self.swagger_url})

    def _checked(self, method: str, path: str, resp: Resp) -> Resp:
        """The response about to be sent; a subclass may replace it."""
        return resp

    def _payload_checked(self, event_type: str, payload: dict[str, Any]) -> None:
        """A webhook payload about to be delivered."""

    def _warn(self, text: str) -> None:
        """Gitea silently ignored part of a request."""
        log.debug("sandbox_forge.ignored", extra={"detail": text})

    # ---- HTTP plumbing ------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        early = await self._intercept(request)
        if early is not None:
            return early
        method, path = request.method, request.path
        query: dict[str, list[str]] = {}
        for key, value in request.query.items():
            query.setdefault(key, []).append(value)
        raw = await request.read()
        body: Any = NO_BODY
        parse_errors: list[str] = []
        if raw.strip():
            ctype = request.headers.get("Content-Type", "")
            if "json" not in ctype:
                parse_errors.append(f"{method} {path}: body sent as {ctype!r}, not JSON")
            try:
                body = json.loads(raw)
            except ValueError as exc:
                parse_errors.append(f"{method} {path}: body is not JSON: {exc}")
                body = None
        if not (path == API_BASE or path.startswith(API_BASE + "/")):
            return self._send(self._outside(method, path))
        errors = parse_errors + self._request_problems(method, path, query, body, parse_errors)
        route = match_route(path[len(API_BASE) :] or "/")
        handler = route.handlers.get(method) if route is not None else None
        if route is None or handler is None:
            return self._send(self._unrouted(method, path, route))
        errors += form_problems(method, route.template, body)
        try:
            doer, token, is_basic = self._authenticate(request)
            ctx = Ctx(
                method,
                route.template,
                route.params,
                query,
                body,
                doer,
                token,
                is_basic,
                errors,
                request,
            )
            self._check_scope(ctx)
            resp = handler(self, ctx)
        except ApiError as exc:
            resp = Resp(exc.status, exc.body)
        finally:
            if method != "GET":
                self._persist()
        return self._send(self._checked(method, path, resp))

    @staticmethod
    def _send(resp: Resp) -> web.Response:
        headers = dict(resp.headers)
        if resp.body is NO_BODY:
            return web.Response(status=resp.status, headers=headers)
        headers["Content-Type"] = "application/json;charset=utf-8"
        return web.Response(status=resp.status, text=go_json(resp.body) + "\n", headers=headers)

    def _error(self, status: int, message: str) -> ApiError:
        return ApiError(status, {"message": message, "url": self.swagger_url})

    def _internal(self) -> ApiError:
        """ctx.APIErrorInternal in production: 500, the cause only in Gitea's log."""
        return self._error(500, "")

    def _authenticate(self, request: web.Request) -> tuple[_User | None, _Token | None, bool]:
        header = request.headers.get("Authorization", "")
        scheme, _, cred = header.strip().partition(" ")
        cred = cred.strip()
        doer: _User | None = None
        token: _Token | None = None
        is_basic = False
        # parseToken: the scheme must be exactly "token" (or "bearer" in any case); anything
        # else, such as "Token x", is not a token and the request is anonymous.
        if scheme == "token" or scheme.lower() == "bearer":
            token = self._tokens.get(cred)
            if token is None:
                raise self._error(401, "invalid username, password or token")
            doer = self._users[token.user_id]
        elif scheme.lower() == "basic":
            try:
                login, _, password = base64.b64decode(cred).decode().partition(":")
            except ValueError as exc:
                raise self._error(401, "invalid basic authentication") from exc
            user = self._user_by_login(login)
            candidate = self._tokens.get(password) or self._tokens.get(login)
            if user is not None and hmac.compare_digest(user.password, password):
                if user.prohibit_login:
                    # UserSignIn refuses a prohibited user's password (not an inactive one's:
                    # "that will be checked on reqSign", the 403 below).
                    raise self._error(
                        401, f"user is not allowed login [uid: {user.id}, name: {user.login}]"
                    )
                doer, is_basic = user, True
            elif candidate is not None:
                token, doer = candidate, self._users[candidate.user_id]
            else:
                raise self._error(401, "invalid username, password or token")
        if doer is not None and (doer.prohibit_login or not doer.active):
            # verifyAuthWithOptions: a disabled user's tokens still parse, then are refused.
            raise ApiError(
                403,
                {
                    "message": "This account is prohibited from signing in, "
                    "please contact your site administrator."
                },
            )
        if doer is not None and doer.must_change_password:
            # AppURL already ends in "/", so Gitea really sends "...//user/change_password".
            raise ApiError(
                403,
                {
                    "message": "You must change your password. Change it at: "
                    + self.app_url
                    + "/user/change_password"
                },
            )
        return doer, token, is_basic

    def _check_scope(self, ctx: Ctx) -> None:
        """tokenRequiresScopes: the route group's category at read (GET) or write level."""
        tpl = ctx.template
        if tpl == "/user" or tpl.startswith("/users/"):
            category = "user"
        elif tpl.startswith("/admin/"):
            category = "admin"
        elif tpl.startswith("/repos/{owner}/{repo}/issues") or tpl.startswith(
            "/repos/{owner}/{repo}/labels"
        ):
            category = "issue"
        elif tpl.startswith("/repos/"):
            category = "repository"
        else:
            return
        if ctx.token is None:
            return
        level = "read" if ctx.method == "GET" else "write"
        if grants(ctx.token.scopes, f"{level}:{category}"):
            return
        raise self._error(
            403,
            f"token does not have at least one of required scope(s), "
            f"required=[{level}:{category}], "
            f"token scope={','.join(ctx.token.scopes)}",
        )

    # ---- helpers ------------------------------------------------------------------------

    def _user_by_login(self, login: str) -> _User | None:
        lower = login.lower()
        return next((u for u in self._users.values() if u.login.lower() == lower), None)

    def _find_repo(self, owner: str, name: str) -> _Repo | None:
        user = self._user_by_login(owner)
        if user is None:
            return None
        lower = name.lower()
        return next(
            (r for r in self._repos.values() if r.owner_id == user.id and r.name.lower() == lower),
            None,
        )

    def _seed_repo(self, owner: str, name: str) -> _Repo:
        repo = self._find_repo(owner, name)
        if repo is None:
            raise KeyError(f"{owner}/{name}")
        return repo

    def _seed_issue(self, owner: str, repo: str, number: int) -> _Issue:
        return self._seed_repo(owner, repo).issues[number]

    def _new_token(self, user: _User, name: str, scopes: tuple[str, ...]) -> _Token:
        token = _Token(
            self._new_id("token"),
            name,
            user.id,
            secrets.token_hex(20),
            normalize_scopes(scopes),
            _now(),
        )
        self._tokens[token.sha1] = token
        return token

    def _new_issue(
        self, repo: _Repo, title: str, body: str, poster: _User, is_pull: bool
    ) -> _Issue:
        now = _now()
        issue = _Issue(
            self._new_id("issue"),
            repo.id,
            repo.next_index,
            ellipsis_display_string(title.strip(), _TITLE_LIMIT),
            body,
            poster.id,
            is_pull,
            now,
            now,
        )
        repo.next_index += 1
        repo.issues[issue.number] = issue
        return issue

    def _perm(self, repo: _Repo, user: _User | None) -> Perm:
        if user is not None and (user.is_admin or user.id == repo.owner_id):
            return "admin"
        granted: Perm = repo.collaborators.get(user.id, "none") if user else "none"
        if granted == "none" and not repo.private:
            return "read"
        return granted

    def _can(self, repo: _Repo, user: _User | None, need: Perm) -> bool:
        return _PERM_RANK[self._perm(repo, user)] >= _PERM_RANK[need]

    def _repo_of(self, ctx: Ctx) -> _Repo:
        """repoAssignment: 404 for unknown repos and for private ones the doer cannot see."""
        repo = self._find_repo(ctx.params["owner"], ctx.params["repo"])
        if repo is None or not self._can(repo, ctx.doer, "read"):
            raise self._error(404, "not found")
        if repo.private and ctx.token is not None and "public-only" in ctx.token.scopes:
            raise self._error(403, "token scope is limited to public repos")
        return repo

    def _signed(self, ctx: Ctx) -> _User:
        """reqToken."""
        if ctx.doer is None:
            raise self._error(401, "token is required")
        return ctx.doer

    def _bind(self, ctx: Ctx, required: Iterable[str] = ()) -> dict[str, Any]:
        """Gitea's `bind()`: schema errors and empty `Required` fields answer 422."""
        if ctx.errors:
            raise self._error(422, "; ".join(ctx.errors))
        form = ctx.obj()
        for name in required:
            if not form.get(name):
                raise self._error(422, f"[{name.title().replace('_', '')}]: Required")
        return form

    def _issue_number(self, ctx: Ctx) -> int:
        """ctx.PathParamInt64: anything unparsable is 0 (and no issue has number 0)."""
        try:
            return int(ctx.params["index"])
        except ValueError:
            return 0

    def _issue_of(self, ctx: Ctx, repo: _Repo) -> _Issue:
        issue = repo.issues.get(self._issue_number(ctx))
        if issue is None:
            raise self._error(404, "not found")
        return issue

    def _issue_or_500(self, ctx: Ctx, repo: _Repo) -> _Issue:
        """The comment routes (Gitea 1.23): GetIssueByIndex's not-found error becomes a 500."""
        issue = repo.issues.get(self._issue_number(ctx))
        if issue is None:
            raise self._internal()
        return issue

    def _repo_labels(self, repo: _Repo) -> list[_Label]:
        return sorted(
            (lbl for lbl in self._labels.values() if lbl.repo_id == repo.id),
            key=lambda lbl: (lbl.name, lbl.id),
        )

    def _issue_labels(self, issue: _Issue) -> list[_Label]:
        return sorted(
            (self._labels[i] for i in issue.label_ids if i in self._labels),
            key=lambda lbl: (lbl.name, lbl.id),
        )

    def _plain_comments(self, issue: _Issue) -> list[_Comment]:
        return [c for c in (self._comments[i] for i in issue.comment_ids) if c.kind == "comment"]

    def _event_comment(self, issue: _Issue, kind: str, doer: _User) -> None:
        """Gitea records state/label/title changes as comments: they use up comment ids."""
        now = _now()
        comment = _Comment(
            self._new_id("comment"), issue.repo_id, issue.number, kind, doer.id, "", now, now
        )
        self._comments[comment.id] = comment
        issue.comment_ids.append(comment.id)

    def _paginate(self, ctx: Ctx, items: list[Any]) -> tuple[list[Any], int, int]:
        limit = ctx.q_int("limit")
        size = _DEFAULT_PAGE_SIZE if limit <= 0 else min(limit, _MAX_PAGE_SIZE)
        page = max(ctx.q_int("page"), 1)
        start = (page - 1) * size
        return items[start : start + size], page, size

    def _link_header(self, ctx: Ctx, total: int, size: int) -> str | None:
        """SetLinkHeader/genAPILinks: next, last, first, prev; joined by ',' with no space."""
        current = max(ctx.q_int("page"), 1)
        pages = 1 if total == 0 else (total + size - 1) // size
        current = min(current, pages)
        has_next = total > current * size
        is_last = total == 0 or (total > (current - 1) * size and not has_next)
        links = []

        def link(page: int, rel: str) -> str:
            params = {k: list(v) for k, v in ctx.query.items()}
            params["page"] = [str(page)]
            query = urlencode(sorted(params.items()), doseq=True, quote_via=quote_plus)
            return f'<{self.app_url}{ctx.request.path[1:]}?{query}>; rel="{rel}"'

        if has_next:
            links.append(link(current + 1, "next"))
        if not is_last:
            links.append(link(pages, "last"))
        if current != 1:
            links.append(link(1, "first"))
        if current > 1:
            links.append(link(current - 1, "prev"))
        return ",".join(links) or None

    def _list_headers(self, ctx: Ctx, total: int, size: int | None) -> dict[str, str]:
        headers = {"X-Total-Count": str(total)}
        exposed = ["X-Total-Count"]
        if size is not None:
            link = self._link_header(ctx, total, size)
            if link:
                headers["Link"] = link
                exposed.insert(0, "Link")
        headers["Access-Control-Expose-Headers"] = ", ".join(exposed)
        return headers

    # ---- JSON shapes (services/convert) ---------------------------------------------------

    def _user_json(self, user: _User, viewer: _User | None) -> dict[str, Any]:
        authed = viewer is not None and (viewer.is_admin or viewer.id == user.id)
        return {
            "id": user.id,
            "login": user.login,
            "login_name": user.login_name if authed else "",
            "source_id": user.source_id if authed else 0,
            "full_name": user.full_name,
            "email": user.email if viewer is not None else f"{user.login}@noreply.localhost",
            "avatar_url": self.app_url
            + "avatars/"
            + hashlib.md5(user.email.encode(), usedforsecurity=False).hexdigest(),
            "html_url": self.app_url + user.login,
            "language": "",
            "is_admin": user.is_admin if authed else False,
            "last_login": _ZERO_TIME,
            "created": _ts(user.created),
            "restricted": user.restricted,
            "active": authed and user.active,
            "prohibit_login": authed and user.prohibit_login,
            "location": "",
            "website": "",
            "description": "",
            "visibility": user.visibility,
            "followers_count": 0,
            "following_count": 0,
            "starred_repos_count": 0,
            # User.MarshalJSON adds it for compatibility, though the swagger does not say so.
            "username": user.login,
        }

    def _repo_json(
        self, repo: _Repo, viewer: _User | None, *, owner_view: bool = False
    ) -> dict[str, Any]:
        owner = self._users[repo.owner_id]
        perm = "admin" if owner_view else self._perm(repo, viewer)
        full = f"{owner.login}/{repo.name}"
        issues = list(repo.issues.values())
        html = self.app_url + full
        # `parent`, `external_tracker`, `external_wiki` and `repo_transfer` are omitempty
        # pointers: a plain repository without them leaves them out.
        return {
            "id": repo.id,
            "owner": self._user_json(owner, None),
            "name": repo.name,
            "full_name": full,
            "description": "",
            "empty": True,
            "private": repo.private,
            "fork": False,
            "template": False,
            "mirror": False,
            "size": 0,
            "language": "",
            "languages_url": f"{self.app_url}api/v1/repos/{full}/languages",
            "html_url": html,
            "url": f"{self.app_url}api/v1/repos/{full}",
            "link": "",
            "ssh_url": f"git@127.0.0.1:{full}.git",
            "clone_url": html + ".git",
            "original_url": "",
            "website": "",
            "stars_count": 0,
            "forks_count": 0,
            "watchers_count": 1,
            "branch_count": 0,
            "open_issues_count": sum(1 for i in issues if not i.is_pull and i.state == "open"),
            "open_pr_counter": sum(1 for i in issues if i.is_pull and i.state == "open"),
            "release_counter": 0,
            "default_branch": "main",
            "default_target_branch": "",
            "archived": False,
            "created_at": _ts(repo.created),
            "updated_at": _ts(repo.created),
            "archived_at": "1970-01-01T00:00:00Z",
            "permissions": {
                "admin": perm == "admin",
                "push": _PERM_RANK[perm] >= 2,
                "pull": _PERM_RANK[perm] >= 1,
            },
            "has_code": True,
            "has_issues": True,
            "internal_tracker": {
                "enable_time_tracker": True,
                "allow_only_contributors_to_track_time": True,
                "enable_issue_dependencies": True,
            },
            "has_wiki": True,
            "has_pull_requests": True,
            "has_projects": True,
            "projects_mode": "all",
            "has_releases": True,
            "has_packages": True,
            "has_actions": True,
            "ignore_whitespace_conflicts": False,
            "allow_merge_commits": True,
            "allow_rebase": True,
            "allow_rebase_explicit": True,
            "allow_squash_merge": True,
            "allow_fast_forward_only_merge": True,
            "allow_rebase_update": True,
            "allow_manual_merge": False,
            "autodetect_manual_merge": False,
            "default_delete_branch_after_merge": False,
            "default_merge_style": "merge",
            "default_allow_maintainer_edit": False,
            "avatar_url": "",
            "internal": False,
            "mirror_interval": "",
            "object_format_name": "sha1",
            "mirror_updated": _ZERO_TIME,
            "topics": None,
            "licenses": None,
        }

    def _label_json(self, label: _Label) -> dict[str, Any]:
        repo = self._repos[label.repo_id]
        full = f"{self._users[repo.owner_id].login}/{repo.name}"
        return {
            "id": label.id,
            "name": label.name,
            "exclusive": label.exclusive,
            "is_archived": label.is_archived,
            "color": label.color.lstrip("#"),
            "description": label.description,
            "url": f"{self.app_url}api/v1/repos/{full}/labels/{label.id}",
        }

    def _issue_html_url(self, issue: _Issue) -> str:
        repo = self._repos[issue.repo_id]
        full = f"{self._users[repo.owner_id].login}/{repo.name}"
        kind = "pulls" if issue.is_pull else "issues"
        return f"{self.app_url}{full}/{kind}/{issue.number}"

    def _issue_json(self, issue: _Issue) -> dict[str, Any]:
        repo = self._repos[issue.repo_id]
        owner = self._users[repo.owner_id]
        full = f"{owner.login}/{repo.name}"
        html = self._issue_html_url(issue)
        assignees = [self._user_json(self._users[u], None) for u in issue.assignee_ids]
        return {
            "id": issue.id,
            "url": f"{self.app_url}api/v1/repos/{full}/issues/{issue.number}",
            "html_url": html,
            "number": issue.number,
            "user": self._user_json(self._users[issue.poster_id], None),
            "original_author": "",
            "original_author_id": 0,
            "title": issue.title,
            "body": issue.body,
            "ref": "",
            "assets": [],
            "labels": [self._label_json(lbl) for lbl in self._issue_labels(issue)],
            "milestone": None,
            "assignee": assignees[0] if assignees else None,
            "assignees": assignees or None,
            "state": issue.state,
            "is_locked": False,
            "comments": len(self._plain_comments(issue)),
            "created_at": _ts(issue.created),
            "updated_at": _ts(issue.updated),
            "closed_at": _ts(issue.closed_at),
            "due_date": None,
            "time_estimate": 0,
            "pull_request": {"merged": False, "merged_at": None, "draft": False, "html_url": html}
            if issue.is_pull
            else None,
            "repository": {
                "id": repo.id,
                "name": repo.name,
                "owner": owner.login,
                "full_name": full,
            },
            "pin_order": 0,
            "content_version": issue.content_version,
            "projects": None,
        }

    def _comment_json(self, comment: _Comment) -> dict[str, Any]:
        repo = self._repos[comment.repo_id]
        issue = repo.issues[comment.number]
        html = self._issue_html_url(issue)
        return {
            "id": comment.id,
            "html_url": f"{html}#issuecomment-{comment.id}",
            # Comment.IssueURL / PRURL: the web pages, one of them "" by kind.
            "pull_request_url": html if issue.is_pull else "",
            "issue_url": "" if issue.is_pull else html,
            "user": self._user_json(self._users[comment.poster_id], None),
            "original_author": "",
            "original_author_id": 0,
            "body": comment.body,
            "assets": [],
            "created_at": _ts(comment.created),
            "updated_at": _ts(comment.updated),
        }

    def _hook_json(self, hook: _Hook) -> dict[str, Any]:
        return {
            "id": hook.id,
            "type": hook.type,
            "name": hook.name,
            "branch_filter": hook.branch_filter,
            "config": {"url": hook.url, "content_type": hook.content_type},
            "events": sorted(hook.events),
            "authorization_header": hook.authorization_header,
            "active": hook.active,
            "updated_at": _ts(hook.updated),
            "created_at": _ts(hook.created),
        }

    # ---- webhooks -----------------------------------------------------------------------

    def _emit(
        self,
        repo: _Repo,
        issue: _Issue,
        event_type: str,
        action: str,
        doer: _User,
        *,
        comment: _Comment | None = None,
        changes: dict[str, Any] | None = None,
    ) -> None:
        """Queue a delivery to every active hook of the repo that subscribed to the event."""
        if issue.is_pull and event_type != "issue_comment":
            self._warn(
                f"webhook {event_type}/{action} for pull request #{issue.number} not emitted "
                "(the sandbox forge only sends pull request comment events)"
            )
            return
        if issue.is_pull:
            event_type = "pull_request_comment"
        hooks = [self._hooks[i] for i in repo.hook_ids]
        targets = [h for h in hooks if h.active and event_type in h.events]
        if not targets:
            return
        payload: dict[str, Any]
        if comment is not None:
            payload = {
                "action": action,
                "issue": self._issue_json(issue),
                "comment": self._comment_json(comment),
            }
            if changes:
                payload["changes"] = changes
            payload |= {
                "repository": self._repo_json(repo, None, owner_view=True),
                "sender": self._user_json(doer, None),
                "is_pull": issue.is_pull,
            }
        else:
            payload = {"action": action, "number": issue.number}
            if changes:
                payload["changes"] = changes
            payload |= {
                "issue": self._issue_json(issue),
                "repository": self._repo_json(repo, None, owner_view=True),
                "sender": self._user_json(doer, None),
                "commit_id": "",
            }
        self._payload_checked(event_type, payload)
        content = go_json(payload, indent=2).encode()
        for hook in targets:
            self._schedule(hook, event_type, action, content)

    def _schedule(self, hook: _Hook, event_type: str, action: str, content: bytes) -> None:
        previous = self._hook_tail.get(hook.id)
        task = asyncio.create_task(self._deliver(previous, hook, event_type, action, content))
        self._hook_tail[hook.id] = task
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(
        self,
        previous: asyncio.Task[None] | None,
        hook: _Hook,
        event_type: str,
        action: str,
        content: bytes,
    ) -> None:
        if previous is not None:  # one hook's deliveries go out in event order
            with contextlib.suppress(Exception):
                await asyncio.shield(previous)
        delivery_id = str(uuid.uuid4())
        event = _EVENT_HEADER.get(event_type, event_type)
        signature = webhook_signature(hook.secret, content) if hook.secret else ""
        sha1 = (
            hmac.new(hook.secret.encode(), content, hashlib.sha1).hexdigest() if hook.secret else ""
        )
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GiteaServer",
            "X-Gitea-Delivery": delivery_id,
            "X-Gitea-Event": event,
            "X-Gitea-Event-Type": event_type,
            "X-Gitea-Signature": signature,
            "X-Gogs-Delivery": delivery_id,
            "X-Gogs-Event": event,
            "X-Gogs-Event-Type": event_type,
            "X-Gogs-Signature": signature,
            "X-Hub-Signature": f"sha1={sha1}",
            "X-Hub-Signature-256": f"sha256={signature}",
            "X-GitHub-Delivery": delivery_id,
            "X-GitHub-Event": event,
            "X-GitHub-Event-Type": event_type,
        }
        if hook.authorization_header:
            headers["Authorization"] = hook.authorization_header
        data = content
        if hook.content_type == "form":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            data = urlencode({"payload": content.decode()}).encode()
        status: int | None = None
        error: str | None = None
        session = self._session
        if session is None:
            return  # stopped meanwhile
        try:
            async with session.post(hook.url, data=data, headers=headers) as resp:
                await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        self.deliveries.append(
            Delivery(
                hook.id,
                hook.url,
                event,
                event_type,
                action,
                delivery_id,
                headers,
                data,
                status,
                error,
            )
        )

    # ---- issue mutations shared by handlers ---------------------------------------------

    def _set_labels(self, repo: _Repo, issue: _Issue, wanted: set[int], doer: _User) -> None:
        wanted = {i for i in wanted if self._labels[i].repo_id == repo.id}
        for _ in (wanted - issue.label_ids) | (issue.label_ids - wanted):
            self._event_comment(issue, "label", doer)
        issue.label_ids = wanted
        issue.updated = _now()

    def _set_state(self, repo: _Repo, issue: _Issue, state: str, doer: _User) -> None:
        if issue.state == state:
            return
        issue.state = state
        issue.closed_at = _now() if state == "closed" else None
        issue.updated = _now()
        self._event_comment(issue, "close" if state == "closed" else "reopen", doer)
        self._emit(repo, issue, "issues", "closed" if state == "closed" else "reopened", doer)

    def _assignees(self, repo: _Repo, form: Mapping[str, Any], status: int = 422) -> list[_User]:
        """Resolve assignee logins (CanBeAssigned: they need write access)."""
        logins = [str(x) for x in form.get("assignees") or []]
        if form.get("assignee"):
            logins.append(str(form["assignee"]))
        users = []
        for login in dict.fromkeys(logins):
            user = self._user_by_login(login)
            if user is None:
                if status == 500:
                    raise self._internal()
                raise self._error(status, f"Assignee does not exist: [name: {login}]")
            if not self._can(repo, user, "write"):
                if status == 500:
                    raise self._internal()
                raise self._error(
                    status,
                    f"user does not have access to repo [user_id: {user.id}, "
                    f"repo_name: {repo.name}]",
                )
            users.append(user)
        return users

    def _set_assignees(self, repo: _Repo, issue: _Issue, users: list[_User], doer: _User) -> None:
        new_ids = [u.id for u in users]
        removed = [u for u in issue.assignee_ids if u not in new_ids]
        added = [u for u in new_ids if u not in issue.assignee_ids]
        issue.assignee_ids = new_ids
        for uid in removed + added:
            self._event_comment(issue, "assignees", doer)
            issue.updated = _now()
            self._emit(
                repo, issue, "issue_assign", "unassigned" if uid in removed else "assigned", doer
            )

    def _labels_from_option(self, ctx: Ctx, repo: _Repo) -> set[int]:
        """prepareForReplaceOrAdd: ids or names (not both); unknown ones are ignored."""
        items = ctx.obj().get("labels") or []
        ids: list[int] = []
        names: list[str] = []
        for item in items:
            if isinstance(item, bool) or not isinstance(item, int | float | str):
                raise self._error(400, "a label must be an integer or a string")
            if isinstance(item, str):
                names.append(item)
            else:
                ids.append(int(item))
        if ids and names:
            raise self._error(400, "labels should be an array of strings or integers")
        ids += [lbl.id for lbl in self._repo_labels(repo) if lbl.name in names]
        unknown = [i for i in ids if i not in self._labels or self._labels[i].repo_id != repo.id]
        missing = [n for n in names if n not in {lbl.name for lbl in self._repo_labels(repo)}]
        if unknown or missing:
            self._warn(
                f"{ctx.method} {ctx.request.path}: Gitea ignores unknown labels {unknown + missing}"
            )
        return {i for i in ids if i not in unknown}


# ---- handlers ------------------------------------------------------------------------------


@_route("GET", "/version")
def _get_version(s: SandboxForge, ctx: Ctx) -> Resp:
    return Resp(200, {"version": s.version})


@_route("GET", "/user")
def _get_user(s: SandboxForge, ctx: Ctx) -> Resp:
    doer = s._signed(ctx)
    return Resp(200, s._user_json(doer, doer))


@_route("POST", "/admin/users")
def _admin_create_user(s: SandboxForge, ctx: Ctx) -> Resp:
    doer = s._signed(ctx)
    if not doer.is_admin:
        raise s._error(403, "user should be the site admin")
    form = s._bind(ctx, ("username", "email"))
    login, email = str(form["username"]), str(form["email"])
    password = str(form.get("password") or "")
    if not form.get("source_id") and len(password) < _MIN_PASSWORD_LENGTH:
        raise s._error(400, "PasswordIsRequired")
    if login.lower() in _RESERVED_NAMES:
        raise s._error(422, f"name is reserved [name: {login}]")
    if not _USERNAME.fullmatch(login):
        raise s._error(
            422,
            f"name is invalid [{login}]: must be valid alpha or numeric or "
            "dash(-_) or dot characters",
        )
    if s._user_by_login(login) is not None:
        raise s._error(422, f"user already exists [name: {login}]")
    if any(u.email.lower() == email.lower() for u in s._users.values()):
        raise s._error(422, f"e-mail already in use [email: {email}]")
    must_change = form.get("must_change_password")
    user = _User(
        id=s._new_id("user"),
        login=login,
        email=email,
        password=password,
        is_admin=False,
        must_change_password=True if must_change is None else bool(must_change),
        created=_now(),
        full_name=str(form.get("full_name") or ""),
        visibility=str(form.get("visibility") or "public"),
        restricted=bool(form.get("restricted")),
        login_name=str(form.get("login_name") or ""),
        source_id=int(form.get("source_id") or 0),
    )
    s._users[user.id] = user
    return Resp(201, s._user_json(user, doer))


@_route("PATCH", "/admin/users/{username}")
def _admin_edit_user(s: SandboxForge, ctx: Ctx) -> Resp:
    """EditUser: how an admin disables an account (`prohibit_login`) or enables it again.

    `login_name` is `binding:"Required"` (an empty one answers 422) and is always written,
    so a client sends the user's own login for a local account; `source_id` 0 keeps it local.
    """
    doer = s._signed(ctx)
    if not doer.is_admin:
        raise s._error(403, "user should be the site admin")
    user = s._user_by_login(ctx.params["username"])
    if user is None:
        raise s._error(404, "not found")
    form = s._bind(ctx, ("login_name",))
    password = str(form.get("password") or "")
    if password and len(password) < _MIN_PASSWORD_LENGTH:
        raise s._error(400, f"password must be at least {_MIN_PASSWORD_LENGTH} characters")
    email = form.get("email")
    if email is not None and any(
        u.id != user.id and u.email.lower() == str(email).lower() for u in s._users.values()
    ):
        raise s._error(400, f"e-mail already in use [email: {email}]")
    user.login_name = str(form["login_name"])
    if form.get("source_id"):
        user.source_id = int(form["source_id"])
    if password:
        user.password = password
    for key, attr in (
        ("must_change_password", "must_change_password"),
        ("prohibit_login", "prohibit_login"),
        ("active", "active"),
        ("admin", "is_admin"),
        ("restricted", "restricted"),
    ):
        if form.get(key) is not None:
            setattr(user, attr, bool(form[key]))
    if email is not None:
        user.email = str(email)
    if form.get("full_name") is not None:
        user.full_name = str(form["full_name"])
    return Resp(200, s._user_json(user, doer))


@_route("GET", "/users/{username}")
def _get_user_info(s: SandboxForge, ctx: Ctx) -> Resp:
    user = s._user_by_login(ctx.params["username"])
    if user is None:
        raise s._error(404, "not found")
    return Resp(200, s._user_json(user, ctx.doer))


def _token_owner(s: SandboxForge, ctx: Ctx) -> _User:
    """The /users/{username}/tokens guards in Gitea's order: UserAssignmentAPI (404),
    reqSelfOrAdmin (403: an admin may manage anyone's tokens), reqBasicOrRevProxyAuth (401:
    a token never manages tokens, not even an admin's)."""
    owner = s._user_by_login(ctx.params["username"])
    if owner is None:
        raise s._error(404, "not found")
    if ctx.doer is None or (not ctx.doer.is_admin and ctx.doer.id != owner.id):
        raise s._error(403, "doer should be the site admin or be same as the contextUser")
    if not ctx.is_basic:
        raise s._error(401, "auth required")
    return owner


def _token_json(token: _Token, *, with_secret: bool) -> dict[str, Any]:
    """The secret (`sha1`) is only ever in the answer that created the token."""
    return {
        "id": token.id,
        "name": token.name,
        "sha1": token.sha1 if with_secret else "",
        "token_last_eight": token.sha1[-8:],
        "scopes": list(token.scopes),
        "created_at": _ts(token.created),
        "last_used_at": _ts(token.created),
    }


@_route("GET", "/users/{username}/tokens")
def _list_tokens(s: SandboxForge, ctx: Ctx) -> Resp:
    owner = _token_owner(s, ctx)
    s._bind(ctx)
    tokens = sorted((t for t in s._tokens.values() if t.user_id == owner.id), key=lambda t: -t.id)
    page, _, size = s._paginate(ctx, tokens)
    return Resp(
        200,
        [_token_json(t, with_secret=False) for t in page],
        s._list_headers(ctx, len(tokens), size),
    )


@_route("DELETE", "/users/{username}/tokens/{token}")
def _delete_token(s: SandboxForge, ctx: Ctx) -> Resp:
    """DeleteAccessToken: the path names a token by id, or by name when it is not a number."""
    owner = _token_owner(s, ctx)
    s._bind(ctx)
    ref = ctx.params["token"]
    try:
        token_id = int(ref, 0)  # strconv.ParseInt(ref, 0, 64), errors ignored
    except ValueError:
        octal = re.fullmatch(r"([+-]?)0([0-7](_?[0-7])*)", ref)  # Go's leading-zero octal
        token_id = int(octal.group(1) + octal.group(2), 8) if octal else 0
    mine = [t for t in s._tokens.values() if t.user_id == owner.id]
    if token_id == 0:
        named = [t for t in mine if t.name == ref]
        if len(named) > 1:
            raise s._error(422, f"multiple matches for token name '{ref}'")
        if not named:
            raise s._error(404, "not found")
        token_id = named[0].id
    found = next((t for t in mine if t.id == token_id), None)
    if found is None:
        raise s._error(404, "not found")
    del s._tokens[found.sha1]
    return Resp(204)


@_route("POST", "/users/{username}/tokens")
def _create_token(s: SandboxForge, ctx: Ctx) -> Resp:
    owner = _token_owner(s, ctx)
    form = s._bind(ctx, ("name",))
    try:
        scopes = normalize_scopes(str(x) for x in form.get("scopes") or [])
    except InvalidScope as exc:
        raise s._error(400, f"invalid access token scope provided: {exc}") from None
    if not scopes:
        raise s._error(400, "access token must have a scope")
    name = str(form["name"])
    if any(t.user_id == owner.id and t.name == name for t in s._tokens.values()):
        raise s._error(400, "access token name has been used already")
    token = s._new_token(owner, name, scopes)
    return Resp(201, _token_json(token, with_secret=True))


def _collaborator(s: SandboxForge, ctx: Ctx, missing: int) -> _User:
    login = ctx.params["collaborator"]
    user = s._user_by_login(login)
    if user is None:
        raise s._error(missing, f"user does not exist [uid: 0, name: {login}]")
    return user


@_route("PUT", "/repos/{owner}/{repo}/collaborators/{collaborator}")
def _add_collaborator(s: SandboxForge, ctx: Ctx) -> Resp:
    """AddOrUpdateCollaborator: one access mode for the whole repository (no per-unit
    modes; those exist only for organisation teams). No `permission` means write."""
    repo = s._repo_of(ctx)
    doer = s._signed(ctx)
    if not s._can(repo, doer, "admin"):
        raise s._error(
            403, "user should be an owner or a collaborator with admin write of a repository"
        )
    form = s._bind(ctx)
    user = _collaborator(s, ctx, 422)
    if not user.active:
        raise s._internal()  # "collaborator's account is inactive", logged only
    requested = form.get("permission")
    granted: Perm = "write"
    if requested is not None:
        granted = requested if requested in ("read", "write", "admin") else "none"
    repo.collaborators[user.id] = granted
    return Resp(204)


@_route("GET", "/repos/{owner}/{repo}/collaborators/{collaborator}")
def _is_collaborator(s: SandboxForge, ctx: Ctx) -> Resp:
    repo = s._repo_of(ctx)
    s._signed(ctx)
    s._bind(ctx)
    user = _collaborator(s, ctx, 422)
    if user.id not in repo.collaborators:
        raise s._error(404, "not found")
    return Resp(204)


@_route("GET", "/repos/{owner}/{repo}/collaborators/{collaborator}/permission")
def _collaborator_permission(s: SandboxForge, ctx: Ctx) -> Resp:
    """GetRepoPermissions: the effective access mode (a stranger reads a public repo)."""
    repo = s._repo_of(ctx)
    doer = s._signed(ctx)
    s._bind(ctx)
    login = ctx.params["collaborator"]
    if (
        not doer.is_admin
        and doer.login.lower() != login.lower()
        and not s._can(repo, doer, "admin")
    ):
        raise s._error(
            403,
            "Only admins can query all permissions, repo admins can query all repo "
            "permissions, collaborators can query only their own",
        )
    user = _collaborator(s, ctx, 404)
    mode = "owner" if user.id == repo.owner_id else s._perm(repo, user)
    # ToUserAndPermission renders the user as seen by the repo's owner (ctx.ContextUser).
    owner = s._users[repo.owner_id]
    return Resp(200, {"permission": mode, "role_name": mode, "user": s._user_json(user, owner)})


@_route("GET", "/repos/{owner}/{repo}")
def _get_repo(s: SandboxForge, ctx: Ctx) -> Resp:
    repo = s._repo_of(ctx)
    return Resp(200, s._repo_json(repo, ctx.doer))


@_route("GET", "/repos/{owner}/{repo}/issues")
def _list_issues(s: SandboxForge, ctx: Ctx) -> Resp:
    repo = s._repo_of(ctx)
    s._bind(ctx)
    state = ctx.q("state")
    kind = ctx.q("type")
    names = [n for n in ctx.q("labels").split(",") if n]
    # GetLabelIDsInRepoByNames drops names that do not exist and returns the id of every
    # label that carries a requested name; IncludedLabelIDs then requires each of them
    # (AND), so two labels of one name are both required and `labels=<unknown>` filters
    # nothing at all.
    wanted = set(names)
    required = {lbl.id for lbl in s._repo_labels(repo) if lbl.name in wanted}
    keyword = ctx.q("q").strip().lower()
    created_by = ctx.q("created_by").lower()
    assigned_by = ctx.q("assigned_by").lower()
    mentioned = ctx.q("mentioned_by").lower()
    since = ctx.q("since")
    before = ctx.q("before")

    def keep(i: _Issue) -> bool:
        if state == "closed" and i.state != "closed":
            return False
        if state not in ("closed", "all") and i.state != "open":
            return False
        if (kind == "issues" and i.is_pull) or (kind == "pulls" and not i.is_pull):
            return False
        if not required <= i.label_ids:
            return False
        if keyword and keyword not in (i.title + "\n" + i.body).lower():
            return False
        if created_by and s._users[i.poster_id].login.lower() != created_by:
            return False
        if assigned_by and assigned_by not in {s._users[u].login.lower() for u in i.assignee_ids}:
            return False
        if mentioned and f"@{mentioned}" not in i.body.lower():
            return False
        if since and i.updated < datetime.fromisoformat(since):
            return False
        return not (before and i.updated > datetime.fromisoformat(before))

    issues = sorted(
        (i for i in repo.issues.values() if keep(i)), key=lambda i: (i.created, i.id), reverse=True
    )
    page, _, size = s._paginate(ctx, issues)
    return Resp(200, [s._issue_json(i) for i in page], s._list_headers(ctx, len(issues), size))


@_route("POST", "/repos/{owner}/{repo}/issues")
def _create_issue(s: SandboxForge, ctx: Ctx) -> Resp:
    repo = s._repo_of(ctx)
    doer = s._signed(ctx)
    form = s._bind(ctx, ("title",))
    writer = s._can(repo, doer, "write")
    label_ids = [int(x) for x in form.get("labels") or []]
    if not writer and (label_ids or form.get("assignees") or form.get("assignee")):
        s._warn(
            f"POST {ctx.request.path}: {doer.login} cannot write, so Gitea drops "
            "the labels and assignees"
        )
        label_ids = []
    assignees = s._assignees(repo, form) if writer else []
    unknown = [i for i in label_ids if i not in s._labels or s._labels[i].repo_id != repo.id]
    if unknown:
        if s.strict_label_ids:
            raise s._error(422, f"label does not exist [id: {unknown[0]}]")
        s._warn(f"POST {ctx.request.path}: Gitea silently drops unknown label ids {unknown}")
    issue = s._new_issue(repo, str(form["title"]), str(form.get("body") or ""), doer, is_pull=False)
    issue.label_ids = {i for i in label_ids if i not in unknown}
    for _ in issue.label_ids:
        s._event_comment(issue, "label", doer)
    # NewIssue notifies assignments inside its transaction, before "opened" and the labels.
    s._set_assignees(repo, issue, assignees, doer)
    s._emit(repo, issue, "issues", "opened", doer)
    if issue.label_ids:
        s._emit(repo, issue, "issue_label", "label_updated", doer)
    if form.get("closed"):
        s._set_state(repo, issue, "closed", doer)
    return Resp(201, s._issue_json(issue))


@_route("GET", "/repos/{owner}/{repo}/issues/{index}")
def _get_issue(s: SandboxForge, ctx: Ctx) -> Resp:
    repo = s._repo_of(ctx)
    s._bind(ctx)
    return Resp(200, s._issue_json(s._issue_of(ctx, repo)))


@_route("PATCH", "/repos/{owner}/{repo}/issues/{index}")
def _edit_issue(s: SandboxForge, ctx: Ctx) -> Resp:
    """EditIssue: each part is written as it comes, so a later refusal keeps earlier parts."""
    repo = s._repo_of(ctx)
    doer = s._signed(ctx)
    form = s._bind(ctx)
    issue = s._issue_of(ctx, repo)
    writer = s._can(repo, doer, "write")
    if issue.poster_id != doer.id and not writer:
        raise ApiError(403)
    title = form.get("title")
    if title:
        new = ellipsis_display_string(str(title), _TITLE_LIMIT)
        if new != issue.title:
            old = issue.title
            issue.title, issue.updated = new, _now()
            s._event_comment(issue, "title", doer)
            s._emit(repo, issue, "issues", "edited", doer, changes={"title": {"from": old}})
    body = form.get("body")
    expected = form.get("content_version")
    if body is not None:
        # ChangeContent updates only where content_version is still the one given.
        if expected is not None and expected != issue.content_version:
            raise s._error(
                409,
                f"content version mismatch: issue #{issue.number} is at "
                f"content_version {issue.content_version}, not {expected}",
            )
        old = issue.body
        issue.body, issue.updated = str(body), _now()
        issue.content_version += 1
        s._emit(repo, issue, "issues", "edited", doer, changes={"body": {"from": old}})
    elif expected is not None:
        s._warn(f"PATCH {ctx.request.path}: content_version without body is not checked by Gitea")
    if writer and (form.get("assignees") is not None or form.get("assignee") is not None):
        # UpdateAssignees: an unknown or unassignable user is an internal error here.
        s._set_assignees(repo, issue, s._assignees(repo, form, status=500), doer)
    state = form.get("state")
    if state is not None:
        if state not in ("open", "closed"):
            raise s._error(412, f"unknown state: {state}")
        s._set_state(repo, issue, str(state), doer)
    return Resp(201, s._issue_json(issue))


@_route("GET", "/repos/{owner}/{repo}/issues/{index}/labels")
def _get_issue_labels(s: SandboxForge, ctx: Ctx) -> Resp:
    repo = s._repo_of(ctx)
    s._bind(ctx)
    issue = s._issue_of(ctx, repo)
    return Resp(200, [s._label_json(lbl) for lbl in s._issue_labels(issue)])


def _change_issue_labels(s: SandboxForge, ctx: Ctx, replace: bool) -> Resp:
    repo = s._repo_of(ctx)
    doer = s._signed(ctx)
    s._bind(ctx)
    issue = s._issue_of(ctx, repo)
    if not s._can(repo, doer, "write"):
        raise s._error(403, "write permission is required")
    ids = s._labels_from_option(ctx, repo)
    s._set_labels(repo, issue, ids if replace else issue.label_ids | ids, doer)
    s._emit(repo, issue, "issue_label", "label_updated", doer)
    return Resp(200, [s._label_json(lbl) for lbl in s._issue_labels(issue)])


@_route("POST", "/repos/{owner}/{repo}/issues/{index}/labels")
def _add_issue_labels(s: SandboxForge, ctx: Ctx) -> Resp:
    return _change_issue_labels(s, ctx, replace=False)


@_route("PUT", "/repos/{owner}/{repo}/issues/{index}/labels")
def _replace_issue_labels(s: SandboxForge, ctx: Ctx) -> Resp:
    return _change_issue_labels(s, ctx, replace=True)


@_route("DELETE", "/repos/{owner}/{repo}/issues/{index}/labels")
def _clear_issue_labels(s: SandboxForge, ctx: Ctx) -> Resp:
    repo = s._repo_of(ctx)
    doer = s._signed(ctx)
    s._bind(ctx)
    issue = s._issue_of(ctx, repo)
    if not s._can(repo, doer, "write"):
        raise ApiError(403)
    s._set_labels(repo, issue, set(), doer)
    s._emit(repo, issue, "issue_label", "label_cleared", doer)
    return Resp(204)


@_route("DELETE", "/repos/{owner}/{repo}/issues/{index}/labels/{id}")
def _remove_issue_label(s: SandboxForge, ctx: Ctx) -> Resp:
    repo = s._repo_of(ctx)
    doer = s._signed(ctx)
    s._bind(ctx)
    issue = s._issue_of(ctx, repo)
    if not s._can(repo, doer, "write"):
        raise ApiError(403)
    try:
        label_id = int(ctx.params["id"])
    except ValueError:
        label_id = 0
    if label_id not in s._labels:
        raise s._error(422, f"label does not exist [label_id: {label_id}]")
    s._set_labels(repo, issue, issue.label_ids - {label_id}, doer)
    s._emit(repo, issue, "issue_label", "label_updated", doer)
    return Resp(204)


@_route("GET", "/repos/{owner}/{repo}/labels")
def _list_labels(s: SandboxForge, ctx: Ctx) -> Resp:
    repo = s._repo_of(ctx)
    s._bind(ctx)
    labels = s._repo_labels(repo)
    page, _, _ = s._paginate(ctx, labels)
    return Resp(200, [s._label_json(lbl) for lbl in page], s._list_headers(ctx, len(labels), None))


@_route("POST", "/repos/{owner}/{repo}/labels")
def _create_label(s: SandboxForge, ctx: Ctx) -> Resp:
    """Label names are not unique in Gitea: a second `bug` is simply another label."""
    repo = s._repo_of(ctx)
    doer = s._signed(ctx)
    if not s._can(repo, doer, "write"):
        raise s._error(403, "user should have a permission to write to a repo")
    form = s._bind(ctx, ("name", "color"))
    color = str(form["color"]).strip()
    if len(color) == 6:
        color = "#" + color
    if not _COLOR.fullmatch(color):
        raise s._error(422, f"invalid color {form['color']!r}")
    label = _Label(
        s._new_id("label"),
        repo.id,
        str(form["name"]),
        color.lower(),
        str(form.get("description") or ""),
        bool(form.get("exclusive")),
        bool(form.get("is_archived")),
    )
    s._labels[label.id] = label
    return Resp(201, s._label_json(label))


@_route("GET", "/repos/{owner}/{repo}/issues/{index}/comments")
def _list_comments(s: SandboxForge, ctx: Ctx) -> Resp:
    repo = s._repo_of(ctx)
    s._bind(ctx)
    issue = s._issue_or_500(ctx, repo)
    since, before = ctx.q("since"), ctx.q("before")
    comments = [
        c
        for c in s._plain_comments(issue)
        if not (since and c.updated < datetime.fromisoformat(since))
        and not (before and c.updated > datetime.fromisoformat(before))
    ]
    return Resp(
        200, [s._comment_json(c) for c in comments], s._list_headers(ctx, len(comments), None)
    )


@_route("POST", "/repos/{owner}/{repo}/issues/{index}/comments")
def _create_comment(s: SandboxForge, ctx: Ctx) -> Resp:
    repo = s._repo_of(ctx)
    doer = s._signed(ctx)
    form = s._bind(ctx, ("body",))
    issue = s._issue_or_500(ctx, repo)
    now = _now()
    comment = _Comment(
        s._new_id("comment"),
        repo.id,
        issue.number,
        "comment",
        doer.id,
        str(form["body"]),
        now,
        now,
    )
    s._comments[comment.id] = comment
    issue.comment_ids.append(comment.id)
    issue.updated = now
    s._emit(repo, issue, "issue_comment", "created", doer, comment=comment)
    return Resp(201, s._comment_json(comment))


def _comment_of(s: SandboxForge, ctx: Ctx, repo: _Repo) -> _Comment:
    try:
        cid = int(ctx.params["id"])
    except ValueError:
        cid = 0
    comment = s._comments.get(cid)
    if comment is None or comment.repo_id != repo.id or comment.number not in repo.issues:
        raise s._error(404, "not found")
    return comment


@_route("GET", "/repos/{owner}/{repo}/issues/comments/{id}")
def _get_comment(s: SandboxForge, ctx: Ctx) -> Resp:
    repo = s._repo_of(ctx)
    s._bind(ctx)
    comment = _comment_of(s, ctx, repo)
    if comment.kind != "comment":  # event comments exist but are not shown
        return Resp(204)
    return Resp(200, s._comment_json(comment))


@_route("DELETE", "/repos/{owner}/{repo}/issues/comments/{id}")
def _delete_comment(s: SandboxForge, ctx: Ctx) -> Resp:
    repo = s._repo_of(ctx)
    doer = s._signed(ctx)
    s._bind(ctx)
    comment = _comment_of(s, ctx, repo)
    if comment.poster_id != doer.id and not s._can(repo, doer, "write"):
        raise ApiError(403)
    if comment.kind != "comment":
        return Resp(204)
    issue = repo.issues[comment.number]
    issue.comment_ids.remove(comment.id)
    del s._comments[comment.id]
    s._emit(repo, issue, "issue_comment", "deleted", doer, comment=comment)
    return Resp(204)


def _hooks_repo(s: SandboxForge, ctx: Ctx) -> _Repo:
    repo = s._repo_of(ctx)
    doer = s._signed(ctx)
    if not s._can(repo, doer, "admin"):
        raise s._error(
            403, "user should be an owner or a collaborator with admin write of a repository"
        )
    return repo


@_route("GET", "/repos/{owner}/{repo}/hooks")
def _list_hooks(s: SandboxForge, ctx: Ctx) -> Resp:
    repo = _hooks_repo(s, ctx)
    s._bind(ctx)
    hooks = [s._hooks[i] for i in repo.hook_ids]
    page, _, _ = s._paginate(ctx, hooks)
    return Resp(200, [s._hook_json(h) for h in page], s._list_headers(ctx, len(hooks), None))


@_route("POST", "/repos/{owner}/{repo}/hooks")
def _create_hook(s: SandboxForge, ctx: Ctx) -> Resp:
    repo = _hooks_repo(s, ctx)
    form = s._bind(ctx, ("type",))
    config = form.get("config")
    if not isinstance(config, dict):
        raise s._error(422, "[Config]: Required")
    for name in ("url", "content_type"):
        if name not in config:
            raise s._error(422, f"Missing config option: {name}")
    if config["content_type"] not in ("json", "form"):
        raise s._error(422, "Invalid content type")
    requested = [str(e) for e in form.get("events") or []] or ["push"]
    events: set[str] = set()
    for name in requested:
        if name == "issues":
            events.update(_ISSUE_EVENTS)
        elif name == "issues_only":
            events.add("issues")
        elif name == "pull_request":
            events.update(_PR_EVENTS)
        elif name == "pull_request_only":
            events.add("pull_request")
        elif name in _ISSUE_EVENTS or name in _PR_EVENTS or name in _OTHER_EVENTS:
            events.add(name)
        else:
            s._warn(f"POST {ctx.request.path}: Gitea ignores unknown hook event {name!r}")
    now = _now()
    hook = _Hook(
        s._new_id("hook"),
        repo.id,
        str(form["type"]),
        str(config["url"]),
        str(config["content_type"]),
        str(config.get("secret") or ""),
        frozenset(events),
        bool(form.get("active")),
        str(form.get("branch_filter") or ""),
        str(form.get("authorization_header") or ""),
        now,
        now,
        str(form.get("name") or ""),
    )
    s._hooks[hook.id] = hook
    repo.hook_ids.append(hook.id)
    return Resp(201, s._hook_json(hook))
