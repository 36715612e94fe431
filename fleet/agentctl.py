"""`fleet agent add|list|show|remove`: an agent's whole identity, made and revoked in one place.

`add` makes (or re-checks) everything an agent is, each step idempotent so that running it
twice changes nothing: its Nostr key and NATS NKey (`fleetcore.identity.keystore`), its
Gitea user, scoped token and repository access (`fleetcore.forge.accounts`), its NATS user
with least-privilege permissions on a running nats-server (`fleet.local.busauth`), its
signed kind-0 profile (kept locally: no relays are configured, so nothing is published),
and the config it runs with. The registry it writes is `fleetcore.identity.agents`.

`remove` revokes what can be revoked: the Gitea token is deleted and the user disabled, the
NKey user leaves nats-server's config and the server reloads, closing the agent's live
connection at once. The Nostr key cannot be revoked; it is archived, and the bot stops
trusting it because the agent is no longer in the registry.

Secrets go to 0600 files only; what this prints and logs is public (npub, NKey public key,
token id), never the nsec, the seed or the token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from fleetcore.bus.auth import AgentUser, BusUsers
from fleetcore.config import FleetConfig, load_config
from fleetcore.forge.accounts import provision_agent_forge, revoke_agent_forge
from fleetcore.forge.client import GiteaClient, GiteaError, client_from_config
from fleetcore.identity import keystore
from fleetcore.identity.agents import (
    CONFIG_FILE,
    FACTS_FILE,
    PROFILE_FILE,
    TIERS,
    TOKEN_FILE,
    AgentFacts,
    RegistryError,
    agent_dir,
    archive_root,
    check_name,
    list_agents,
    load_facts,
)
from fleetcore.identity.nostr import IRREVOCABLE, profile_event
from fleetcore.log import fields
from fleetcore.secrets import SecretError, make_private_dir, write_new_private, write_private

log = logging.getLogger("hermes.agents")

EXIT_REFUSED = 1


class AgentError(RuntimeError):
    """A step that cannot be done; the message is for the operator."""


@dataclass
class AgentReport:
    """What one `add` or `remove` did: `changes` empty means nothing changed."""

    facts: AgentFacts
    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# -- NATS -------------------------------------------------------------------------------


def _users_file(state_dir: Path) -> Path:
    from fleet.local.busauth import USERS_FILE

    return state_dir / USERS_FILE


async def nats_grant(state_dir: Path, agent: AgentUser) -> str | None:
    """Let the agent's NKey user on the bus with its tier's permissions; reload nats-server.

    Returns what changed in words, None when the user was already there as it is. A fleet
    whose nats-server this machine does not manage (no `nats-users.json` in the state
    directory) is told what to add by hand.
    """
    from fleet.local.busauth import add_agent
    from fleet.local.nats import ReloadError

    path = _users_file(state_dir)
    if not path.exists():
        raise AgentError(
            f"NATS users are not managed in {state_dir} (no {path.name}): add the NKey user "
            f"{agent.nkey} to your nats-server's authorization (fleetcore/bus/auth.py)"
        )
    users = BusUsers.from_json(path.read_text())
    if agent in users.agents:
        return None
    try:
        reloaded = await add_agent(state_dir, agent)
    except ReloadError as exc:
        raise AgentError(str(exc)) from None
    return f"NATS user {agent.nkey} added" + (
        f" ({_servers(reloaded)} reloaded)" if reloaded else " (read at the next start)"
    )


async def nats_revoke(state_dir: Path, name: str) -> str | None:
    """Take the agent's NKey user off the bus; a running server closes its connection."""
    from fleet.local.busauth import remove_agent
    from fleet.local.nats import ReloadError

    path = _users_file(state_dir)
    if not path.exists():
        return None
    users = BusUsers.from_json(path.read_text())
    if not any(a.name == name for a in users.agents):
        return None
    try:
        reloaded = await remove_agent(state_dir, name)
    except ReloadError as exc:  # saved, and reloaded wherever it could be: say where not
        raise AgentError(str(exc)) from None
    return "NATS user removed" + (
        f" ({_servers(reloaded)} reloaded: its connections are refused)" if reloaded else ""
    )


def _servers(n: int) -> str:
    return "nats-server" if n == 1 else f"{n} nats-servers"


# -- Gitea ------------------------------------------------------------------------------


def _admin(cfg: FleetConfig) -> tuple[GiteaClient, tuple[str, str]]:
    g = cfg.gitea
    if g is None:
        raise AgentError("the config has no gitea: section")
    if g.admin_password is None or g.admin_user is None:
        raise AgentError(
            "gitea.admin_user and gitea.admin_password are needed: Gitea mints and deletes "
            "users' tokens only with the site admin's login"
        )
    password = g.admin_password.get()  # before the client: nothing to close if it fails
    return client_from_config(cfg), (g.admin_user, password)


def _repos(cfg: FleetConfig, extra: Sequence[str]) -> list[str]:
    from fleetcore.projects import project_store

    return sorted({p.repo for p in project_store(cfg).all()} | set(extra))


# -- the registry -----------------------------------------------------------------------


def _write_if_changed(path: Path, text: str) -> bool:
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except FileNotFoundError:
        pass
    write_private(path, text)
    return True


def _raw_config(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise AgentError(f"{path}: expected a mapping of config keys")
    return data


def agent_config(raw: dict[str, Any], cfg: FleetConfig, folder: Path) -> dict[str, Any]:
    """The fleet's config as the agent runs it: its own token, NKey seed and Nostr key,
    and none of the admin's login."""
    gitea = {
        k: v
        for k, v in (raw.get("gitea") or {}).items()
        if k not in ("admin_user", "admin_password")
    }
    out = {**raw, "soul": str(cfg.soul)}
    if gitea:
        gitea["token"] = {"file": str(folder / TOKEN_FILE)}
        out["gitea"] = gitea
    out["bus"] = {**(raw.get("bus") or {}), "nkey_seed_file": str(folder / keystore.NKEY_FILE)}
    out["wolves"] = {
        **(raw.get("wolves") or {}),
        "nostr_key_file": str(folder / keystore.NOSTR_FILE),
    }
    return out


async def add_agent(
    config_path: Path, name: str, tier: str, *, extra_repos: Sequence[str] = ()
) -> AgentReport:
    """Make agent `name` whole, or check that it is; see the module docstring."""
    check_name(name)
    if tier not in TIERS:
        raise AgentError(f"tier must be one of {', '.join(TIERS)}, not {tier!r}")
    cfg = load_config(config_path)
    raw = _raw_config(config_path)
    state = cfg.state_dir.expanduser()
    folder = agent_dir(state, name)
    changes: list[str] = []
    notes: list[str] = []

    if not (folder / keystore.NOSTR_FILE).exists() and not (folder / keystore.NKEY_FILE).exists():
        ident = keystore.keygen(folder, name)
        changes.append(f"made Nostr key {ident.npub} and NATS NKey {ident.nkey}")
        notes.append(f"{name}'s Nostr key: {IRREVOCABLE}.")
    nostr, nkey = keystore.load_agent(folder)
    if not (folder / PROFILE_FILE).exists():
        event = profile_event(nostr, name, f"{name}, an agent of a Hermes fleet ({tier})")
        write_new_private(folder / PROFILE_FILE, json.dumps(event.to_dict(), indent=1) + "\n")
        changes.append(f"wrote the signed kind-0 profile to {folder / PROFILE_FILE}")
    old = load_facts(state, name)

    token_id: int | None = None
    gitea_user: str | None = None
    if cfg.gitea is not None:
        client, admin_auth = _admin(cfg)
        token_path = folder / TOKEN_FILE
        known = old.gitea_token_id if old is not None and token_path.exists() else None
        try:
            account = await provision_agent_forge(
                client, admin_auth, name, _repos(cfg, extra_repos), token_id=known
            )
        except GiteaError as exc:
            raise AgentError(f"Gitea: {exc}") from None
        finally:
            await client.aclose()
        if account.minted:
            assert account.token is not None
            write_private(token_path, account.token + "\n")
            changes.append(
                f"minted Gitea token id {account.token_id} ({', '.join(account.scopes)})"
            )
        if account.created_user:
            changes.append(f"created Gitea user {name}")
        if account.enabled_user:
            changes.append(f"enabled Gitea user {name} again")
        for repo in account.granted:
            changes.append(f"made {name} a collaborator on {repo}")
        token_id, gitea_user = account.token_id, account.username
    else:
        notes.append("no gitea: section in the config: no forge account made")

    try:
        nats = await nats_grant(state, AgentUser(name, nkey.public, tier))
    except AgentError as exc:
        notes.append(f"NATS: {exc}")
    else:
        if nats is not None:
            changes.append(nats)

    facts = AgentFacts(name, tier, nostr.npub, nkey.public, gitea_user, token_id)
    if _write_if_changed(folder / FACTS_FILE, facts.to_yaml()):
        changes.append(f"recorded {folder / FACTS_FILE}")
    agent_cfg = yaml.safe_dump(agent_config(raw, cfg, folder), sort_keys=False)
    if _write_if_changed(folder / CONFIG_FILE, agent_cfg):
        changes.append(f"wrote the agent's config {folder / CONFIG_FILE}")
    notes.append("relays: none configured, so the profile is not published")
    log.info("agent_added", extra=fields(agent=name, tier=tier, changes=len(changes)))
    return AgentReport(facts, changes, notes)


async def remove_agent(config_path: Path, name: str) -> AgentReport:
    """Revoke agent `name`: forge token and user, NATS user; archive its Nostr key."""
    cfg = load_config(config_path)
    state = cfg.state_dir.expanduser()
    facts = load_facts(state, check_name(name))
    if facts is None:
        raise AgentError(f"no agent named {name} in {state}")
    changes: list[str] = []
    if cfg.gitea is not None and facts.gitea_user is not None:
        client, admin_auth = _admin(cfg)
        try:
            revoked = await revoke_agent_forge(client, admin_auth, facts.gitea_user)
        except GiteaError as exc:
            raise AgentError(f"Gitea: {exc}") from None
        finally:
            await client.aclose()
        if revoked.deleted_tokens:
            ids = ", ".join(str(t) for t in revoked.deleted_tokens)
            changes.append(f"deleted Gitea token(s) {ids}")
        if revoked.disabled:
            changes.append(f"disabled Gitea user {facts.gitea_user}")
    nats = await nats_revoke(state, name)
    if nats is not None:
        changes.append(nats)
    folder = agent_dir(state, name)
    (folder / TOKEN_FILE).unlink(missing_ok=True)  # revoked: a dead secret is still a secret
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    archive = make_private_dir(archive_root(state)) / f"{name}-{stamp}"
    shutil.move(str(folder), archive)
    changes.append(f"archived the Nostr key in {archive}")
    log.info("agent_removed", extra=fields(agent=name, npub=facts.npub))
    return AgentReport(
        facts,
        changes,
        [
            f"WARNING: {name}'s Nostr key ({facts.npub}) cannot be revoked: {IRREVOCABLE}. "
            "The fleet no longer trusts it; anyone else may."
        ],
    )


async def heartbeats(cfg: FleetConfig, timeout_s: float = 3.0) -> dict[str, datetime] | None:
    """Each live agent's last heartbeat from the bus registry; None if the bus is away."""
    if cfg.bus is None:
        return None
    from fleetcore.bus.connect import connect
    from fleetcore.bus.registry import Registry

    try:
        nc = await connect(cfg.bus, "fleet-agent-list", first_connect_timeout_s=timeout_s)
    except Exception:
        return None
    try:
        registry = await asyncio.wait_for(Registry.open(nc.jetstream()), timeout_s)
        records = await asyncio.wait_for(registry.list(), timeout_s)
    except Exception:
        return None
    finally:
        await nc.close()
    return {r.name: r.heartbeat_at for r in records}


# -- the command ------------------------------------------------------------------------


def _print_report(report: AgentReport) -> None:
    if report.changes:
        for line in report.changes:
            print(f"  {line}")
    else:
        print("  nothing changed")
    for note in report.notes:
        print(note, file=sys.stderr)


def add_main(config_path: Path, name: str, tier: str) -> int:
    try:
        report = asyncio.run(add_agent(config_path, name, tier))
    except (AgentError, RegistryError, SecretError) as exc:
        print(f"fleet agent add: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    f = report.facts
    print(f"agent {f.name} [{f.tier}] npub {f.npub} nkey {f.nkey}")
    _print_report(report)
    return 0


def remove_main(config_path: Path, name: str) -> int:
    try:
        report = asyncio.run(remove_agent(config_path, name))
    except (AgentError, RegistryError, SecretError) as exc:
        print(f"fleet agent remove: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"agent {name} removed")
    _print_report(report)
    return 0


def _ago(at: datetime | None) -> str:
    if at is None:
        return "-"
    return f"{max(0.0, time.time() - at.timestamp()):.0f}s ago"


def list_main(config_path: Path) -> int:
    cfg = load_config(config_path)
    agents = list_agents(cfg.state_dir)
    beats = asyncio.run(heartbeats(cfg)) if agents else {}
    header = ("NAME", "TIER", "NPUB", "NKEY", "GITEA", "HEARTBEAT")
    rows = [header] + [
        (
            a.name,
            a.tier,
            a.npub,
            a.nkey,
            a.gitea_user or "-",
            "?" if beats is None else _ago(beats.get(a.name)),
        )
        for a in agents
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if beats is None:
        print("(heartbeats unknown: the bus is not reachable)", file=sys.stderr)
    return 0


def show_main(config_path: Path, name: str) -> int:
    cfg = load_config(config_path)
    state = cfg.state_dir.expanduser()
    try:
        facts = load_facts(state, name)
    except RegistryError as exc:
        print(f"fleet agent show: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    if facts is None:
        print(f"fleet agent show: no agent named {name} in {state}", file=sys.stderr)
        return EXIT_REFUSED
    folder = agent_dir(state, name)
    beats = asyncio.run(heartbeats(cfg))
    lines = {
        "name": facts.name,
        "tier": facts.tier,
        "npub": facts.npub,
        "nkey": facts.nkey,
        "gitea user": facts.gitea_user or "-",
        "gitea token id": str(facts.gitea_token_id) if facts.gitea_token_id else "-",
        "last heartbeat": "?" if beats is None else _ago(beats.get(name)),
        "directory": str(folder),
        "config": str(folder / CONFIG_FILE),
        "profile (kind 0, not published)": str(folder / PROFILE_FILE),
    }
    for key, value in lines.items():
        print(f"{key}: {value}")
    return 0
