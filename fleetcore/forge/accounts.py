"""Agents' own Gitea accounts (issue #13): made, checked and revoked through the admin API.

Each agent gets a Gitea user of its own, so what a wolf writes is authored by `wolf-N`, and a
token that can do only what an agent does:

* Scopes `AGENT_SCOPES`: `write:issue` (comment, label, and create the fleet's labels when
  missing), `read:repository` (see the repo, never push: a push needs `write:repository`)
  and `read:user` (`GET /user`, how the agent and `fleet doctor` check the token works).
* Repository access `AGENT_PERMISSION` = `write`. Commenting needs only read access, but
  adding or removing an issue's labels needs write access to the issues unit
  (`CanWriteIssuesOrPulls` in Gitea's issue-label API), and a collaborator's access is one
  mode for the whole repository: per-unit modes exist only for organisation teams. So
  `write` is the least collaborator permission that can label; what keeps the agent from
  pushing code is its token's scopes. (On an organisation's repo, a team whose only write
  unit is `repo.issues` would be tighter still; the fleet does not manage teams.)

Tokens are minted, listed and deleted with the site admin's basic auth (Gitea refuses token
management with a token). The secret is in Gitea's answer once: `provision_agent_forge`
returns it only when it minted one, for the caller to store at once (`write_private`) with
the token's id, which is what later runs and `revoke_agent_forge` go by.

Both functions are idempotent: a second `provision_agent_forge` with the stored token id
changes nothing; `revoke_agent_forge` on a revoked agent does nothing.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from fleetcore.errors import FleetError
from fleetcore.forge.client import (
    AlreadyExists,
    GiteaClient,
    GiteaError,
    LoginProhibited,
    MissingScope,
    NotFound,
    Unauthorized,
)
from fleetcore.forge.models import AccessToken
from fleetcore.forge.scopes import normalize_scopes

log = logging.getLogger("hermes.forge.accounts")

AGENT_SCOPES: Final = ("read:repository", "write:issue", "read:user")
AGENT_PERMISSION: Final = "write"
TOKEN_NAME: Final = "hermes-fleet"
# Marks accounts the fleet made: an existing user without it is never adopted, so adding an
# agent named like a person cannot hand that person's account to a wolf.
FULL_NAME_PREFIX: Final = "Hermes agent"


class AccountConflict(FleetError):
    """The agent's login belongs to a Gitea user the fleet did not make."""


@dataclass(frozen=True)
class AgentForgeAccount:
    """What `provision_agent_forge` did, and what the caller keeps.

    `token` is the secret, set only when this call minted it (then `minted` is true): store
    it once, with `token_id`. `granted` lists the repos whose access was changed."""

    username: str
    token_id: int
    token_name: str
    scopes: tuple[str, ...]
    token: str | None = field(default=None, repr=False)
    created_user: bool = False
    enabled_user: bool = False
    minted: bool = False
    granted: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.created_user or self.enabled_user or self.minted or bool(self.granted)


@dataclass(frozen=True)
class AgentForgeRevocation:
    username: str
    deleted_tokens: tuple[int, ...] = ()
    disabled: bool = False
    missing: bool = False  # there was no such user: nothing to revoke


def agent_full_name(name: str) -> str:
    return f"{FULL_NAME_PREFIX} {name}"


def _split_repo(full: str) -> tuple[str, str]:
    owner, _, repo = full.partition("/")
    if not owner or not repo or "/" in repo:
        raise ValueError(f"{full!r} is not owner/name")
    return owner, repo


async def _ensure_user(client: GiteaClient, name: str, email: str) -> tuple[bool, bool]:
    """(created, enabled again). The agent's password is random and forgotten at once:
    nothing signs in as an agent, its tokens are minted with the admin's login."""
    try:
        await client.admin_create_user(
            name,
            email,
            secrets.token_urlsafe(32),
            must_change_password=False,
            full_name=agent_full_name(name),
        )
    except AlreadyExists:
        pass
    else:
        return True, False
    user = await client.get_user(name)
    if not user.full_name.startswith(FULL_NAME_PREFIX):
        raise AccountConflict(
            f"Gitea user {name} exists and was not made by the fleet "
            f"(its full name does not start with {FULL_NAME_PREFIX!r}); pick another name"
        )
    if user.prohibit_login or not user.active:
        await client.admin_edit_user(name, prohibit_login=False, active=True)
        return False, True
    return False, False


async def _ensure_token(
    client: GiteaClient,
    admin_auth: tuple[str, str],
    name: str,
    token_name: str,
    scopes: tuple[str, ...],
    known_id: int | None,
) -> tuple[AccessToken, bool]:
    """(token, minted). A token the caller holds (`known_id`) with the right scopes is kept;
    any other token of our name is deleted, since its secret cannot be had again."""
    tokens = await client.list_tokens(name, basic_auth=admin_auth)
    for token in tokens:
        if token.id == known_id and normalize_scopes(token.scopes) == scopes:
            return token, False
    for token in tokens:
        if token.name == token_name or token.id == known_id:
            await client.delete_token(name, token.id, basic_auth=admin_auth)
    minted = await client.create_token(name, token_name, scopes, basic_auth=admin_auth)
    return minted, True


async def provision_agent_forge(
    client: GiteaClient,
    admin_auth: tuple[str, str],
    name: str,
    repos: Sequence[str],
    *,
    token_id: int | None = None,
    scopes: Sequence[str] = AGENT_SCOPES,
    permission: str = AGENT_PERMISSION,
    email: str | None = None,
    token_name: str = TOKEN_NAME,
) -> AgentForgeAccount:
    """Make (or re-check) agent `name`'s account, token and access to `repos` (owner/name).

    `client` carries the site admin's token, `admin_auth` the same admin's login and
    password (for the token endpoints). `token_id`: the id stored by an earlier run; without
    it, or if that token is gone or has other scopes, a new token is minted and returned."""
    wanted = normalize_scopes(scopes)
    targets = [_split_repo(r) for r in repos]
    created, enabled = await _ensure_user(client, name, email or f"{name}@fleet.invalid")
    token, minted = await _ensure_token(client, admin_auth, name, token_name, wanted, token_id)
    granted = []
    for owner, repo in targets:
        current = await client.collaborator_permission(owner, repo, name)
        if current in (permission, "owner"):
            continue
        await client.add_collaborator(owner, repo, name, permission)
        granted.append(f"{owner}/{repo}")
    account = AgentForgeAccount(
        username=name,
        token_id=token.id,
        token_name=token.name,
        scopes=normalize_scopes(token.scopes),
        token=token.secret if minted else None,
        created_user=created,
        enabled_user=enabled,
        minted=minted,
        granted=tuple(granted),
    )
    log.info(
        "forge.agent_provisioned",
        extra={
            "agent": name,
            "token_id": account.token_id,
            "created": created,
            "minted": minted,
            "granted": list(account.granted),
        },
    )
    return account


async def revoke_agent_forge(
    client: GiteaClient, admin_auth: tuple[str, str], name: str
) -> AgentForgeRevocation:
    """Delete every token of agent `name` and disable the account (`prohibit_login`).

    The account is kept, disabled, so the comments it wrote keep their author; `fleet agent
    add` with the same name enables it again. Its repository access is left as it is:
    a disabled user can do nothing with it."""
    try:
        user = await client.get_user(name)
    except NotFound:
        return AgentForgeRevocation(name, missing=True)
    if not user.full_name.startswith(FULL_NAME_PREFIX):
        raise AccountConflict(f"Gitea user {name} was not made by the fleet; not revoking it")
    deleted = []
    for token in await client.list_tokens(name, basic_auth=admin_auth):
        if await client.delete_token(name, token.id, basic_auth=admin_auth):
            deleted.append(token.id)
    disabled = False
    if not user.prohibit_login:
        await client.admin_edit_user(name, prohibit_login=True)
        disabled = True
    log.info(
        "forge.agent_revoked",
        extra={"agent": name, "deleted_tokens": deleted, "disabled": disabled},
    )
    return AgentForgeRevocation(name, tuple(deleted), disabled)


async def check_agent_forge(
    agent: GiteaClient,
    name: str,
    *,
    token_id: int | None = None,
    scopes: Sequence[str] = AGENT_SCOPES,
    admin: GiteaClient | None = None,
    admin_auth: tuple[str, str] | None = None,
    repos: Sequence[str] = (),
    permission: str = AGENT_PERMISSION,
) -> list[str]:
    """What is wrong with agent `name`'s Gitea token, in words for `fleet doctor` (empty:
    nothing). `agent` is a client carrying the agent's stored token.

    With the token alone: it is accepted, belongs to `name`, and its user is enabled. A
    token cannot read its own scopes, so with the admin's login as well (`admin`,
    `admin_auth`), Gitea's list of the user's tokens is read and the token (by `token_id`)
    must carry exactly `scopes`: more would break least privilege, fewer break the agent;
    and on each of `repos` the user must have exactly `permission`.
    """
    problems: list[str] = []
    try:
        login = await agent.whoami()
    except LoginProhibited:
        return [f"Gitea account {name} is disabled"]
    except MissingScope:
        problems.append(f"{name}'s Gitea token lacks read:user (cannot check who it is)")
        login = name
    except Unauthorized:
        return [f"{name}'s Gitea token is rejected (deleted or wrong)"]
    except GiteaError as exc:
        return [f"{name}'s Gitea token could not be checked: {exc}"]
    if login.lower() != name.lower():
        problems.append(f"the Gitea token stored for {name} belongs to {login}")
    if admin is None or admin_auth is None:
        return problems
    try:
        tokens = await admin.list_tokens(name, basic_auth=admin_auth)
    except GiteaError as exc:
        return [*problems, f"cannot list {name}'s Gitea tokens: {exc}"]
    if token_id is None:
        return [*problems, f"no Gitea token id is recorded for {name}: run `fleet agent add`"]
    found = next((t for t in tokens if t.id == token_id), None)
    if found is None:
        problems.append(f"{name}'s Gitea token (id {token_id}) is not among the user's tokens")
        return problems
    have, want = normalize_scopes(found.scopes), normalize_scopes(scopes)
    if have != want:
        problems.append(
            f"{name}'s Gitea token has scopes {', '.join(have)}; expected {', '.join(want)}"
        )
    for full in repos:
        owner, repo = _split_repo(full)
        try:
            current = await admin.collaborator_permission(owner, repo, name)
        except GiteaError as exc:
            problems.append(f"cannot read {name}'s access to {full}: {exc}")
            continue
        if current != permission:
            problems.append(f"{name} has {current} access to {full}; expected {permission}")
    return problems
