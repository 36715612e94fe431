"""An async Gitea API client: the fleet's only way to talk to the forge.

Small surface, precise errors. Every failure is one of a few exception classes whose
message says what happened in words an operator can act on (token rejected, repo not
found, what was invalid), because these messages go straight into a chat room.

Retries: idempotent requests (GET, PATCH, PUT, DELETE) are retried with backoff on 5xx,
connection errors and timeouts. A POST is retried only when it certainly did not reach
Gitea (the connection could not be opened) or a proxy said Gitea is away (502/503):
retrying a POST that may have been applied would open the same issue twice. 4xx is never
retried: the same request will be refused again.

Gitea's own quirks the client absorbs: listing or commenting on an issue that does not exist
answers 500, not 404 (Gitea 1.23), so a 500 there is followed by one GET of the issue to
tell "deleted" (`NotFound`) from "Gitea is failing" (`GiteaUnavailable`); and label names
are not unique (a create never fails on a clash), so `ensure_labels` looks up before it
creates and settles on the lowest id of each name.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from fleetcore.errors import FleetError
from fleetcore.forge.models import (
    AccessToken,
    Comment,
    ForgeUser,
    Hook,
    Issue,
    Label,
    Page,
    Repo,
)
from fleetcore.forge.scopes import InvalidScope, normalize_scopes

log = logging.getLogger("hermes.forge")

MAX_LIMIT = 50  # Gitea caps `limit` at 50 (default 30); asking for more silently gets 50
FLEET_LABEL_COLORS = {
    "ready": "#0e8a16",
    "burn": "#d93f0b",
    "triaged": "#1d76db",
    "needs-human": "#b60205",
}
DEFAULT_LABEL_COLOR = "#c5def5"
_IDEMPOTENT = {"GET", "PUT", "PATCH", "DELETE", "HEAD"}

if TYPE_CHECKING:
    from fleetcore.config import FleetConfig


class GiteaError(FleetError):
    """Gitea refused or failed a request; `str()` is a one-line reason fit for a room."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def room_message(self) -> str:
        return f"Gitea refused: {self}"


class GiteaUnavailable(GiteaError):
    """Gitea could not be reached, timed out, or kept answering 5xx."""

    @property
    def room_message(self) -> str:
        return f"Gitea is not reachable right now ({self}). Nothing was changed."


class Unauthorized(GiteaError):
    """401/403: the token is missing, wrong, or lacks a scope."""


class Forbidden(Unauthorized):
    """403: Gitea knows who is asking and refuses this request to them."""


class MissingScope(Forbidden):
    """403: the token is valid but was not minted with the scope this request needs."""


class LoginProhibited(Forbidden):
    """403: the token's user is disabled (`prohibit_login`, or not active)."""


class NotFound(GiteaError):
    """404: the owner/repo, issue, comment or label does not exist (or is invisible)."""


class Invalid(GiteaError):
    """400/422: Gitea said what was wrong with the request."""


class AlreadyExists(Invalid):
    """The user (422) or the user's token name (400) is taken: for an idempotent caller, the
    thing to create is already there."""


class Conflict(GiteaError):
    """409: a stale `content_version`; someone else edited the issue first."""


def _error_text(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:200]
    if isinstance(data, Mapping):
        parts = [str(data.get("message") or "").strip()]
        errors = data.get("errors")
        if isinstance(errors, list):
            parts += [str(e) for e in errors if e]
        return "; ".join(p for p in parts if p)[:300]
    return str(data)[:200]


def _read_as_token_id(ref: str) -> bool:
    """Whether Gitea's DeleteAccessToken reads `ref` as a number (strconv.ParseInt base 0:
    also 0x.., 0o.., 0b.. and leading-zero octal), and so never as a token's name."""
    text = ref.strip()
    try:
        int(text, 0)
    except ValueError:
        return text.lstrip("+-").isdigit()  # "017": octal to Go, an error to Python
    return True


def label_color(name: str) -> str:
    if name.startswith("assigned:"):
        return "#fbca04"
    return FLEET_LABEL_COLORS.get(name, DEFAULT_LABEL_COLOR)


class GiteaClient:
    """One client per process; keeps one connection pool and a per-repo label cache."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 20.0,
        retries: int = 3,
        backoff_s: float = 0.25,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff_s = backoff_s
        self._http = httpx.AsyncClient(
            base_url=f"{self.base_url}/api/v1",
            headers={"Authorization": f"token {token}", "Accept": "application/json"},
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            transport=transport,
        )
        self._labels: dict[tuple[str, str], dict[str, Label]] = {}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> GiteaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- transport -------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        what: str = "",
        auth: tuple[str, str] | None = None,
        issue: tuple[str, str, int] | None = None,
        attempts: int | None = None,
    ) -> httpx.Response:
        """`issue`: the request is about that issue's comments; a 500 is then checked
        against the issue itself (Gitea answers 500 there for a deleted issue)."""
        attempts = self.retries + 1 if attempts is None else attempts
        last: str = ""
        last_status: int | None = None
        probed = False
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(self.backoff_s * (2 ** (attempt - 1)))
            try:
                kwargs: dict[str, Any] = {"params": params, "json": json}
                if auth is not None:
                    kwargs["auth"] = httpx.BasicAuth(*auth)  # replaces the token header
                response = await self._http.request(method, path, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last = f"cannot connect to {self.base_url} ({type(exc).__name__})"
                continue
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                last = f"{type(exc).__name__} talking to {self.base_url}"
                if method in _IDEMPOTENT:
                    continue
                raise GiteaUnavailable(
                    f"{last}; the {method} may or may not have been applied"
                ) from exc
            status = response.status_code
            if status >= 500:
                last, last_status = f"Gitea answered {status}", status
                if status == 500 and issue is not None and not probed:
                    probed = True
                    await self._raise_if_issue_missing(*issue)
                if method in _IDEMPOTENT or status in (502, 503):
                    continue
                raise GiteaUnavailable(last, status)
            if status >= 400:
                raise self._client_error(response, what or f"{method} {path}", auth is not None)
            return response
        log.warning("gitea.unavailable", extra={"path": path, "reason": last})
        raise GiteaUnavailable(f"{last} (after {attempts} attempts)", last_status)

    async def _raise_if_issue_missing(self, owner: str, repo: str, number: int) -> None:
        """NotFound if the issue is gone; otherwise return (the 500 stands as Gitea's)."""
        what = f"issue {owner}/{repo}#{number}"
        try:
            await self._request(
                "GET", f"/repos/{owner}/{repo}/issues/{number}", what=what, attempts=1
            )
        except NotFound:
            raise NotFound(f"{what} not found (deleted?)", 404) from None
        except GiteaError:
            return  # Gitea cannot say either: the original failure is reported

    @staticmethod
    def _client_error(response: httpx.Response, what: str, basic: bool = False) -> GiteaError:
        status = response.status_code
        detail = _error_text(response)
        suffix = f": {detail}" if detail else ""
        if status == 401:
            if basic:
                return Unauthorized(f"the Gitea login was rejected (401){suffix}", status)
            return Unauthorized("the Gitea token was rejected (401)", status)
        if status == 403:
            if "required scope" in detail:
                return MissingScope(f"the Gitea token lacks a scope for {what}{suffix}", status)
            if "prohibited from signing in" in detail or "not activated" in detail:
                return LoginProhibited(f"the Gitea account is disabled (403){suffix}", status)
            return Forbidden(f"the Gitea token may not do this (403){suffix}", status)
        if status == 404:
            return NotFound(f"{what} not found", status)
        if status == 409:
            return Conflict(f"{what}: changed by someone else first (409){suffix}", status)
        if status in (400, 422):
            return Invalid(f"{what} was invalid ({status}){suffix}", status)
        return GiteaError(f"{what} failed ({status}){suffix}", status)

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._request(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise GiteaError(f"Gitea sent a body that is not JSON for {method} {path}") from exc

    # -- server, repos ---------------------------------------------------------------

    async def version(self) -> str:
        data = await self._json("GET", "/version", what="version")
        return str(data.get("version") or "")

    async def whoami(self) -> str:
        """The login our token belongs to (the fleet's own actions are not echoed back)."""
        data = await self._json("GET", "/user", what="the token's user")
        return str(data.get("login") or "")

    async def get_repo(self, owner: str, repo: str) -> Repo:
        data = await self._json("GET", f"/repos/{owner}/{repo}", what=f"repo {owner}/{repo}")
        return Repo.of(data)

    # -- issues ----------------------------------------------------------------------

    async def list_issues_page(
        self,
        owner: str,
        repo: str,
        *,
        state: str = "open",
        labels: Sequence[str] | None = None,
        page: int = 1,
        limit: int = 30,
    ) -> Page[Issue]:
        params: dict[str, Any] = {
            "state": state,
            "type": "issues",  # without it Gitea mixes pull requests into the list
            "page": page,
            "limit": min(limit, MAX_LIMIT),
        }
        if labels:
            params["labels"] = ",".join(labels)
        response = await self._request(
            "GET", f"/repos/{owner}/{repo}/issues", params=params, what=f"repo {owner}/{repo}"
        )
        items = [Issue.of(d) for d in response.json()]
        total_header = response.headers.get("X-Total-Count")
        total = int(total_header) if total_header and total_header.isdigit() else len(items)
        return Page(items, total)

    async def iter_issues(
        self,
        owner: str,
        repo: str,
        *,
        state: str = "open",
        labels: Sequence[str] | None = None,
    ) -> AsyncIterator[Issue]:
        """Every issue, page by page; with `labels`, those carrying every one of them.

        Gitea's filter requires every label of a requested name, so where a name is carried
        by two labels (see `ensure_labels`) it would miss issues that carry only one: such
        names are filtered here instead.
        """
        wanted = list(labels or ())
        twins: set[str] = set()
        if wanted:
            counts = Counter(label.name for label in await self.list_labels(owner, repo))
            twins = {name for name in wanted if counts[name] > 1}
        server_side = [name for name in wanted if name not in twins] or None
        page = 1
        seen = 0
        while True:
            result = await self.list_issues_page(
                owner, repo, state=state, labels=server_side, page=page, limit=MAX_LIMIT
            )
            for issue in result.items:
                if twins <= set(issue.label_names):
                    yield issue
            seen += len(result.items)
            if not result.items or seen >= result.total:
                return
            page += 1

    async def get_issue(self, owner: str, repo: str, number: int) -> Issue:
        data = await self._json(
            "GET", f"/repos/{owner}/{repo}/issues/{number}", what=f"issue {owner}/{repo}#{number}"
        )
        return Issue.of(data)

    async def create_issue(
        self,
        owner: str,
        repo: str,
        title: str,
        body: str = "",
        *,
        labels: Sequence[str] = (),
    ) -> Issue:
        """Labels are names; they are created on demand and sent as ids, as Gitea requires."""
        if not title.strip():
            raise Invalid("an issue needs a title")
        ids = [label.id for label in (await self.ensure_labels(owner, repo, labels)).values()]
        payload: dict[str, Any] = {"title": title.strip(), "body": body}
        if ids:
            payload["labels"] = ids
        data = await self._json(
            "POST", f"/repos/{owner}/{repo}/issues", json=payload, what=f"repo {owner}/{repo}"
        )
        return Issue.of(data)

    async def edit_issue(
        self,
        owner: str,
        repo: str,
        number: int,
        *,
        state: str | None = None,
        title: str | None = None,
        body: str | None = None,
        content_version: int | None = None,
    ) -> Issue:
        payload: dict[str, Any] = {}
        for key, value in (
            ("state", state),
            ("title", title),
            ("body", body),
            ("content_version", content_version),
        ):
            if value is not None:
                payload[key] = value
        data = await self._json(
            "PATCH",
            f"/repos/{owner}/{repo}/issues/{number}",
            json=payload,
            what=f"issue {owner}/{repo}#{number}",
        )
        return Issue.of(data)

    # -- labels ----------------------------------------------------------------------

    async def list_labels(self, owner: str, repo: str) -> list[Label]:
        out: list[Label] = []
        page = 1
        while True:
            response = await self._request(
                "GET",
                f"/repos/{owner}/{repo}/labels",
                params={"page": page, "limit": MAX_LIMIT},
                what=f"repo {owner}/{repo}",
            )
            batch = [Label.of(d) for d in response.json()]
            out += batch
            total = response.headers.get("X-Total-Count")
            if len(batch) < MAX_LIMIT or (total and total.isdigit() and len(out) >= int(total)):
                return out
            page += 1

    async def create_label(
        self, owner: str, repo: str, name: str, color: str | None = None, description: str = ""
    ) -> Label:
        payload = {"name": name, "color": color or label_color(name), "description": description}
        data = await self._json(
            "POST", f"/repos/{owner}/{repo}/labels", json=payload, what=f"label {name}"
        )
        return Label.of(data)

    async def ensure_labels(self, owner: str, repo: str, names: Sequence[str]) -> dict[str, Label]:
        """Map names to labels, creating the missing ones (the fleet's labels appear on demand).

        Gitea keeps no label name unique and never refuses a clash, so two writers that both
        miss a name both create it. Look up before creating (a fresh list whenever the cache
        lacks a name); after creating, list again and take the lowest id of each name: ids
        only grow, so every writer settles on the same label, and duplicates that already
        exist are handled the same way.
        """
        key = (owner.lower(), repo.lower())
        cache = self._labels.get(key)
        wanted = list(dict.fromkeys(names))
        if cache is None or any(n not in cache for n in wanted):
            cache = self._by_name(owner, repo, await self.list_labels(owner, repo))
            self._labels[key] = cache
        missing = [n for n in wanted if n not in cache]
        if missing:
            for name in missing:
                await self.create_label(owner, repo, name)
            cache = self._by_name(owner, repo, await self.list_labels(owner, repo))
            self._labels[key] = cache
            gone = [n for n in missing if n not in cache]
            if gone:
                raise GiteaError(f"labels {gone} vanished right after being created")
        return {name: cache[name] for name in wanted}

    @staticmethod
    def _by_name(owner: str, repo: str, labels: Iterable[Label]) -> dict[str, Label]:
        """name -> the label of that name with the lowest id."""
        out: dict[str, Label] = {}
        twins: set[str] = set()
        for label in sorted(labels, key=lambda lb: lb.id):
            if label.name in out:
                twins.add(label.name)
            out.setdefault(label.name, label)
        if twins:
            log.warning(
                "gitea.duplicate_labels",
                extra={"repo": f"{owner}/{repo}", "labels": sorted(twins)},
            )
        return out

    async def add_labels(
        self, owner: str, repo: str, number: int, names: Sequence[str]
    ) -> list[Label]:
        ids = [label.id for label in (await self.ensure_labels(owner, repo, names)).values()]
        data = await self._json(
            "POST",
            f"/repos/{owner}/{repo}/issues/{number}/labels",
            json={"labels": ids},
            what=f"issue {owner}/{repo}#{number}",
        )
        return [Label.of(d) for d in data or []]

    async def remove_label(self, owner: str, repo: str, number: int, name: str) -> bool:
        """Remove a label by name; False when the issue did not carry it (already removed)."""
        return bool(await self.remove_labels(owner, repo, number, [name]))

    async def remove_labels(
        self,
        owner: str,
        repo: str,
        number: int,
        names: Iterable[str],
        current: Sequence[Label] | None = None,
    ) -> list[str]:
        """Remove labels by name with one read of the issue (none if `current` is given,
        e.g. what `add_labels` answered); returns the names that were removed."""
        wanted = set(names)
        if current is None:
            current = (await self.get_issue(owner, repo, number)).labels
        removed = []
        for label in current:
            if label.name not in wanted:
                continue
            try:
                await self._request(
                    "DELETE",
                    f"/repos/{owner}/{repo}/issues/{number}/labels/{label.id}",
                    what=f"label {label.name} on {owner}/{repo}#{number}",
                )
            except NotFound:
                continue  # someone removed it first
            removed.append(label.name)
        return removed

    # -- comments --------------------------------------------------------------------

    async def list_comments(self, owner: str, repo: str, number: int) -> list[Comment]:
        data = await self._json(
            "GET",
            f"/repos/{owner}/{repo}/issues/{number}/comments",
            what=f"issue {owner}/{repo}#{number}",
            issue=(owner, repo, number),
        )
        return sorted((Comment.of(d) for d in data or []), key=lambda c: c.id)

    async def create_comment(self, owner: str, repo: str, number: int, body: str) -> Comment:
        if not body.strip():
            raise Invalid("a comment needs text")
        data = await self._json(
            "POST",
            f"/repos/{owner}/{repo}/issues/{number}/comments",
            json={"body": body},
            what=f"issue {owner}/{repo}#{number}",
            issue=(owner, repo, number),
        )
        return Comment.of(data)

    async def delete_comment(self, owner: str, repo: str, comment_id: int) -> bool:
        try:
            await self._request(
                "DELETE",
                f"/repos/{owner}/{repo}/issues/comments/{comment_id}",
                what=f"comment {comment_id}",
            )
        except NotFound:
            return False
        return True

    # -- users, tokens, collaborators ------------------------------------------------
    #
    # Agent accounts (issue #13). Token endpoints take BASIC auth only (Gitea's
    # reqBasicOrRevProxyAuth): a token, even an admin's, is refused with 401. A site admin's
    # basic auth may list, mint and delete any user's tokens (reqSelfOrAdmin), so an agent's
    # own password is never needed after its account exists.

    async def admin_create_user(
        self,
        username: str,
        email: str,
        password: str,
        *,
        must_change_password: bool = False,
        full_name: str = "",
    ) -> ForgeUser:
        """Create an account as the site admin. Agent users need must_change_password=false:
        until a password is changed, every API call the user makes answers 403.

        Raises AlreadyExists when the login is taken (Gitea answers 422 "user already
        exists"); a taken e-mail address is a plain Invalid, since it is someone else."""
        payload: dict[str, Any] = {
            "username": username,
            "email": email,
            "password": password,
            "must_change_password": must_change_password,
        }
        if full_name:
            payload["full_name"] = full_name
        try:
            data = await self._json("POST", "/admin/users", json=payload, what=f"user {username}")
        except Invalid as exc:
            if exc.status == 422 and "user already exists" in str(exc):
                raise AlreadyExists(f"Gitea user {username} already exists", 422) from None
            raise
        return ForgeUser.of(data)

    async def admin_edit_user(
        self,
        username: str,
        *,
        prohibit_login: bool | None = None,
        active: bool | None = None,
        must_change_password: bool | None = None,
        full_name: str | None = None,
    ) -> ForgeUser:
        """Change a local account as the site admin; `prohibit_login=True` disables it (its
        tokens are refused with 403 from then on), False enables it again.

        EditUserOption's `login_name` is required (empty answers 422) and always written, so
        the user's own login is sent: harmless for a local account, whose sign-in never reads
        it; `source_id` 0 leaves the authentication source alone. Not for externally
        authenticated users, whose login name it would overwrite."""
        payload: dict[str, Any] = {"source_id": 0, "login_name": username}
        for key, value in (
            ("prohibit_login", prohibit_login),
            ("active", active),
            ("must_change_password", must_change_password),
            ("full_name", full_name),
        ):
            if value is not None:
                payload[key] = value
        data = await self._json(
            "PATCH", f"/admin/users/{username}", json=payload, what=f"user {username}"
        )
        return ForgeUser.of(data)

    async def get_user(self, username: str) -> ForgeUser:
        """A user as our token's owner sees it (an admin sees `active`/`prohibit_login`)."""
        data = await self._json("GET", f"/users/{username}", what=f"user {username}")
        return ForgeUser.of(data)

    async def create_token(
        self,
        username: str,
        name: str,
        scopes: Sequence[str],
        *,
        basic_auth: tuple[str, str],
    ) -> AccessToken:
        """Mint a token for `username` with `basic_auth` (the user's own login, or a site
        admin's). The answer is the only time Gitea shows the secret (`secret`): the caller
        stores it at once. Scopes are checked here first, so a typo is not a 400 later.

        Raises AlreadyExists when the user already has a token of that name (Gitea answers
        400 "access token name has been used already"); its secret cannot be had again."""
        try:
            wanted = normalize_scopes(scopes)
        except InvalidScope as exc:
            raise Invalid(str(exc)) from None
        if not wanted:
            raise Invalid("a Gitea token needs at least one scope")
        if _read_as_token_id(name):
            raise Invalid(f"token name {name!r} is a number, which Gitea takes as a token id")
        try:
            data = await self._json(
                "POST",
                f"/users/{username}/tokens",
                json={"name": name, "scopes": list(wanted)},
                auth=basic_auth,
                what=f"token for {username}",
            )
        except Invalid as exc:
            if exc.status == 400 and "has been used already" in str(exc):
                raise AlreadyExists(
                    f"Gitea user {username} already has a token named {name}", 400
                ) from None
            raise
        return AccessToken.of(data)

    async def list_tokens(self, username: str, *, basic_auth: tuple[str, str]) -> list[AccessToken]:
        """Every token of `username`, with scopes and last eight characters, never secrets."""
        out: list[AccessToken] = []
        page = 1
        while True:
            response = await self._request(
                "GET",
                f"/users/{username}/tokens",
                params={"page": page, "limit": MAX_LIMIT},
                auth=basic_auth,
                what=f"tokens of {username}",
            )
            batch = [AccessToken.of(d) for d in response.json()]
            out += batch
            total = response.headers.get("X-Total-Count")
            if len(batch) < MAX_LIMIT or (total and total.isdigit() and len(out) >= int(total)):
                return out
            page += 1

    async def delete_token(
        self, username: str, token: int | str, *, basic_auth: tuple[str, str]
    ) -> bool:
        """Delete a token by id, or by name; False when there was none (already deleted).

        Gitea reads a path segment that parses as a number as an id, so a name that looks
        like one is refused here rather than deleting some other token."""
        if isinstance(token, str) and _read_as_token_id(token):
            raise Invalid(f"token name {token!r} is a number; pass the token's id instead")
        try:
            await self._request(
                "DELETE",
                f"/users/{username}/tokens/{token}",
                auth=basic_auth,
                what=f"token {token} of {username}",
            )
        except NotFound:
            return False
        return True

    async def add_collaborator(self, owner: str, repo: str, username: str, permission: str) -> None:
        """Add `username` to the repo (or change their access) at `permission`: read, write
        or admin, for the whole repository: per-unit access exists only for org teams."""
        if permission not in ("read", "write", "admin"):
            raise Invalid(f"collaborator permission {permission!r} is not read, write or admin")
        await self._request(
            "PUT",
            f"/repos/{owner}/{repo}/collaborators/{username}",
            json={"permission": permission},
            what=f"collaborator {username} on {owner}/{repo}",
        )

    async def is_collaborator(self, owner: str, repo: str, username: str) -> bool:
        """Whether the user is a collaborator (an unknown user is Invalid: Gitea says 422)."""
        try:
            await self._request(
                "GET",
                f"/repos/{owner}/{repo}/collaborators/{username}",
                what=f"collaborator {username} on {owner}/{repo}",
            )
        except NotFound:
            return False
        return True

    async def collaborator_permission(self, owner: str, repo: str, username: str) -> str:
        """The user's effective access: none, read, write, admin or owner (anyone may read a
        public repository, so a stranger there is `read`)."""
        data = await self._json(
            "GET",
            f"/repos/{owner}/{repo}/collaborators/{username}/permission",
            what=f"permission of {username} on {owner}/{repo}",
        )
        return str(data.get("permission") or "none")

    # -- hooks -----------------------------------------------------------------------

    async def list_hooks(self, owner: str, repo: str) -> list[Hook]:
        data = await self._json("GET", f"/repos/{owner}/{repo}/hooks", what=f"repo {owner}/{repo}")
        return [Hook.of(d) for d in data or []]

    async def create_hook(
        self,
        owner: str,
        repo: str,
        url: str,
        secret: str,
        events: Sequence[str] = ("issues", "issue_assign", "issue_label", "issue_comment"),
    ) -> Hook:
        data = await self._json(
            "POST",
            f"/repos/{owner}/{repo}/hooks",
            json={
                "type": "gitea",
                "config": {"url": url, "content_type": "json", "secret": secret},
                "events": list(events),
                "active": True,
            },
            what=f"repo {owner}/{repo}",
        )
        return Hook.of(data)


def client_from_config(cfg: FleetConfig) -> GiteaClient:
    assert cfg.gitea is not None
    g = cfg.gitea
    return GiteaClient(
        g.url,
        g.token.get(),
        connect_timeout_s=g.connect_timeout_s,
        read_timeout_s=g.read_timeout_s,
        retries=g.retries,
    )
