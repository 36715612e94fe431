"""The fleet's agent registry on disk: who the agents are, and which keys are theirs.

`fleet agent add` writes it; the bot reads it to know whose signature a result must carry.
One 0700 directory per agent, `STATE_DIR/agents/NAME/`:

- `nostr.nsec`, `nkey.seed` (the keystore's files, 0600);
- `gitea.token`: the agent's own forge token, written once when minted (0600);
- `agent.yaml`: public facts only (tier, npub, NKey public key, Gitea user, the token's id,
  which is what revokes it); never a secret, so `fleet agent list` and the bot may read it;
- `profile.json`: the agent's signed Nostr kind-0 profile, kept locally (nothing is
  published unless relays are configured);
- `config.yaml`: the config the agent runs with (its own token, key and seed files).

A removed agent's directory moves to `agents/.archive/NAME-<time>/`: its Nostr key cannot
be revoked, so it is kept (never deleted) and no longer trusted. Agent names cannot start
with a dot, so the archive is never taken for an agent.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from fleetcore.identity.nostr import NostrError, npub_decode

AGENTS_DIR = "agents"
ARCHIVE_DIR = ".archive"
FACTS_FILE = "agent.yaml"
TOKEN_FILE = "gitea.token"
PROFILE_FILE = "profile.json"
CONFIG_FILE = "config.yaml"
AGENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
TIERS = ("wolves", "workers", "strategists")


class RegistryError(ValueError):
    """An agent name or an `agent.yaml` the registry cannot use."""


@dataclass(frozen=True)
class AgentFacts:
    """What `agent.yaml` holds: public, so it can be shown and read by anyone on the box."""

    name: str
    tier: str
    npub: str
    nkey: str
    gitea_user: str | None = None
    gitea_token_id: int | None = None

    def to_yaml(self) -> str:
        return yaml.safe_dump(asdict(self), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str, where: Path) -> AgentFacts:
        data: Any = yaml.safe_load(text)
        if not isinstance(data, dict):
            raise RegistryError(f"{where}: expected a mapping")
        try:
            facts = cls(**data)
            npub_decode(facts.npub)
        except (TypeError, NostrError) as exc:
            raise RegistryError(f"{where}: {exc}") from None
        return facts


def check_name(name: str) -> str:
    if not AGENT_NAME.fullmatch(name):
        raise RegistryError(f"{name!r} is not an agent name (letters, digits, - and _)")
    return name


def agents_root(state_dir: Path) -> Path:
    return state_dir.expanduser() / AGENTS_DIR


def agent_dir(state_dir: Path, name: str) -> Path:
    return agents_root(state_dir) / check_name(name)


def archive_root(state_dir: Path) -> Path:
    return agents_root(state_dir) / ARCHIVE_DIR


def load_facts(state_dir: Path, name: str) -> AgentFacts | None:
    path = agent_dir(state_dir, name) / FACTS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return AgentFacts.from_yaml(text, path)


def list_agents(state_dir: Path) -> list[AgentFacts]:
    root = agents_root(state_dir)
    if not root.is_dir():
        return []
    out = []
    for child in sorted(root.iterdir()):
        if child.name.startswith(".") or not (child / FACTS_FILE).is_file():
            continue
        facts = load_facts(state_dir, child.name)
        if facts is not None:
            out.append(facts)
    return out


def registered_npub(state_dir: Path, name: str) -> str | None:
    """The npub a result from agent `name` must be signed by; None for an unknown (or
    removed) agent. Read at each call, so an agent added or removed since is seen at once."""
    try:
        facts = load_facts(state_dir, name)
    except RegistryError:
        return None
    return None if facts is None else facts.npub
