"""nats-server's users and their permissions, generated from who is in the fleet.

The bot administers the bus: it creates the streams, the tier consumers and the buckets,
so it has every right. An agent gets only what one wolf needs to do its work, named
subject by subject:

- pull from its tier's durable, which the bot created (`CONSUMER.MSG.NEXT`), look it up
  (`CONSUMER.INFO`) and ack, nak or extend what it was given (`$JS.ACK.<stream>.<durable>`);
- publish results only under its own name (`fleet.results.*.<name>`), so the bot can
  tell who reported what, its status (`fleet.status.<name>`: "every model provider is
  failing") likewise, and its heartbeat only to its own registry key;
- read the registry (is a claimant alive?) and the fleet's comment counter;
- receive replies only on its own inbox prefix (`_INBOX_<name>.>`): another agent's
  replies, which carry tasks, never reach it.

Never consumer-create rights: nats-server does not check the deliver subject of a new
consumer against the creator's subscribe permissions, so an agent allowed to create one
could have every task, result or heartbeat pushed to it.

One shared write remains: the fleet-wide comment counter (`fleet_limits`) is counted by
every wolf with compare-and-set, so agents may write that bucket. A misbehaving agent can
only spend or withhold the comment budget, which is advisory: it holds its own forge
token anyway. The registry is written per key: each agent only its own.

Pure: the text this returns is written and loaded by `fleet.local.nats`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fleetcore.bus.subjects import (
    AGENTS_BUCKET,
    LIMITS_BUCKET,
    RESULTS_PREFIX,
    TASKS_STREAM,
    agent_key,
    check_token,
    status_subject,
    tier_consumer,
)
from fleetcore.identity.nkey import is_user_public

JS_API = "$JS.API"
INBOX_PREFIX = "_INBOX"


def agent_inbox_prefix(name: str) -> str:
    """The inbox prefix an agent connects with (nats-py's `inbox_prefix`)."""
    return f"{INBOX_PREFIX}_{agent_key(name)}"


def kv_stream(bucket: str) -> str:
    return f"KV_{bucket}"


def kv_subject(bucket: str, key: str = ">") -> str:
    return f"$KV.{bucket}.{key}"


def _check_nkey(value: str, who: str) -> str:
    if not is_user_public(value):
        raise ValueError(f"{who}'s nkey must be an NKey user public key (U + 55 characters)")
    return value


@dataclass(frozen=True)
class AgentUser:
    name: str
    nkey: str
    tier: str

    def __post_init__(self) -> None:
        agent_key(self.name)
        check_token(self.tier, "tier")
        _check_nkey(self.nkey, f"agent {self.name}")


@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]

    def as_conf(self) -> dict[str, Any]:
        return {
            "publish": {"allow": list(self.publish)},
            "subscribe": {"allow": list(self.subscribe)},
        }


def _read_bucket(bucket: str) -> list[str]:
    """Binding to a bucket and getting keys, either way nats-py may get them."""
    stream = kv_stream(bucket)
    return [
        f"{JS_API}.STREAM.INFO.{stream}",
        f"{JS_API}.STREAM.MSG.GET.{stream}",
        f"{JS_API}.DIRECT.GET.{stream}",
        f"{JS_API}.DIRECT.GET.{stream}.>",
    ]


def agent_permissions(agent: AgentUser) -> Permissions:
    durable = tier_consumer(agent.tier)
    publish = [
        f"{JS_API}.CONSUMER.MSG.NEXT.{TASKS_STREAM}.{durable}",
        f"{JS_API}.CONSUMER.INFO.{TASKS_STREAM}.{durable}",
        f"$JS.ACK.{TASKS_STREAM}.{durable}.>",
        f"{RESULTS_PREFIX}.*.{agent.name}",
        status_subject(agent.name),
        kv_subject(AGENTS_BUCKET, agent.name),
        *_read_bucket(AGENTS_BUCKET),
        kv_subject(LIMITS_BUCKET),
        *_read_bucket(LIMITS_BUCKET),
    ]
    return Permissions(tuple(publish), (f"{agent_inbox_prefix(agent.name)}.>",))


@dataclass(frozen=True)
class TLSFiles:
    """The server's side of mutual TLS: every client must show a certificate by `ca`."""

    cert: Path
    key: Path
    ca: Path

    def as_conf(self) -> dict[str, Any]:
        return {
            "cert_file": str(self.cert),
            "key_file": str(self.key),
            "ca_file": str(self.ca),
            "verify": True,
            "timeout": 5,
        }


@dataclass(frozen=True)
class BusUsers:
    """Everyone allowed on the bus: the bot and one user per agent."""

    bot_nkey: str
    agents: tuple[AgentUser, ...] = field(default=())

    def __post_init__(self) -> None:
        _check_nkey(self.bot_nkey, "the bot")
        seen: dict[str, str] = {self.bot_nkey: "the bot"}
        names: set[str] = set()
        for agent in self.agents:
            if agent.name in names:
                raise ValueError(f"agent {agent.name} is listed twice")
            if agent.nkey in seen:
                # One key, two users: nats-server would pick one, and its permissions.
                raise ValueError(f"agent {agent.name} shares its nkey with {seen[agent.nkey]}")
            names.add(agent.name)
            seen[agent.nkey] = f"agent {agent.name}"

    def with_agent(self, agent: AgentUser) -> BusUsers:
        """`agent` added, or replacing the agent of the same name (a new key or tier)."""
        others = tuple(a for a in self.agents if a.name != agent.name)
        return replace(self, agents=(*others, agent))

    def without_agent(self, name: str) -> BusUsers:
        if not any(a.name == name for a in self.agents):
            raise KeyError(f"no agent named {name}")
        return replace(self, agents=tuple(a for a in self.agents if a.name != name))

    def to_json(self) -> str:
        return json.dumps(
            {
                "bot": self.bot_nkey,
                "agents": [{"name": a.name, "nkey": a.nkey, "tier": a.tier} for a in self.agents],
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> BusUsers:
        data = json.loads(text)
        return cls(data["bot"], tuple(AgentUser(**a) for a in data.get("agents", [])))


def server_config(users: BusUsers, tls: TLSFiles | None = None) -> str:
    """nats-server's configuration file: the users, their rights and optionally mTLS.

    Written as JSON values, which nats-server's parser reads, so a subject such as
    `$JS.API...` is always quoted and never taken for a variable.
    """
    entries: list[dict[str, Any]] = [{"nkey": users.bot_nkey}]
    for agent in sorted(users.agents, key=lambda a: a.name):
        entries.append({"nkey": agent.nkey, "permissions": agent_permissions(agent).as_conf()})
    parts = [
        "# Generated by the fleet (fleetcore/bus/auth.py): edits are overwritten.",
        "# The first user is the bot, with every right; then one user per agent.",
        "authorization: " + json.dumps({"users": entries}, indent=2),
    ]
    if tls is not None:
        parts.append("tls: " + json.dumps(tls.as_conf(), indent=2))
    return "\n".join(parts) + "\n"
