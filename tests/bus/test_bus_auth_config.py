"""The generated nats-server configuration: what each user may do, subject by subject."""

from __future__ import annotations

import json
import re

import pytest

from fleetcore.bus.auth import (
    AgentUser,
    BusUsers,
    TLSFiles,
    agent_inbox_prefix,
    agent_permissions,
    server_config,
)
from fleetcore.identity.nkey import UserNKey

KEYS = [UserNKey.generate().public for _ in range(4)]


def _users() -> BusUsers:
    return BusUsers(
        KEYS[0], (AgentUser("alice", KEYS[1], "fast"), AgentUser("bob", KEYS[2], "slow"))
    )


def test_an_agent_may_publish_exactly_what_its_work_needs() -> None:
    perms = agent_permissions(AgentUser("alice", KEYS[1], "fast"))
    assert perms.publish == (
        "$JS.API.CONSUMER.MSG.NEXT.FLEET_TASKS.wolves-fast",
        "$JS.API.CONSUMER.INFO.FLEET_TASKS.wolves-fast",
        "$JS.ACK.FLEET_TASKS.wolves-fast.>",
        "fleet.results.*.alice",
        "fleet.status.alice",
        "$KV.fleet_agents.alice",
        "$JS.API.STREAM.INFO.KV_fleet_agents",
        "$JS.API.STREAM.MSG.GET.KV_fleet_agents",
        "$JS.API.DIRECT.GET.KV_fleet_agents",
        "$JS.API.DIRECT.GET.KV_fleet_agents.>",
        "$KV.fleet_limits.>",
        "$JS.API.STREAM.INFO.KV_fleet_limits",
        "$JS.API.STREAM.MSG.GET.KV_fleet_limits",
        "$JS.API.DIRECT.GET.KV_fleet_limits",
        "$JS.API.DIRECT.GET.KV_fleet_limits.>",
    )
    assert perms.subscribe == ("_INBOX_alice.>",)
    assert agent_inbox_prefix("alice") == "_INBOX_alice"


def test_no_agent_right_creates_consumers_or_touches_tasks() -> None:
    for agent in _users().agents:
        perms = agent_permissions(agent)
        for subject in perms.publish:
            assert "CREATE" not in subject and "DELETE" not in subject and "PURGE" not in subject
            assert not subject.startswith("fleet.tasks")
            assert subject not in (">", "$JS.API.>", "$JS.>", "$KV.>")
        # Its own name in every write of its own: results and heartbeat.
        assert f"fleet.results.*.{agent.name}" in perms.publish
        assert [s for s in perms.publish if s.startswith("$KV.fleet_agents.")] == [
            f"$KV.fleet_agents.{agent.name}"
        ]


def test_the_config_lists_the_bot_first_with_every_right_then_each_agent() -> None:
    text = server_config(_users())
    body = json.loads(re.search(r"authorization: (\{.*\})", text, re.S).group(1))  # type: ignore[union-attr]
    users = body["users"]
    assert users[0] == {"nkey": KEYS[0]}
    assert [u["nkey"] for u in users[1:]] == [KEYS[1], KEYS[2]]
    assert users[1]["permissions"]["subscribe"] == {"allow": ["_INBOX_alice.>"]}
    assert "tls" not in text


def test_tls_is_mutual() -> None:
    from pathlib import Path

    text = server_config(_users(), TLSFiles(Path("/s.pem"), Path("/s.key"), Path("/ca.pem")))
    tls = json.loads(text.split("tls: ", 1)[1])
    assert tls["verify"] is True and tls["ca_file"] == "/ca.pem"


def test_users_are_added_replaced_and_removed_by_name() -> None:
    users = _users()
    moved = users.with_agent(AgentUser("alice", KEYS[3], "slow"))
    assert {a.name: (a.nkey, a.tier) for a in moved.agents}["alice"] == (KEYS[3], "slow")
    assert [a.name for a in moved.without_agent("alice").agents] == ["bob"]
    with pytest.raises(KeyError):
        users.without_agent("carol")
    assert BusUsers.from_json(users.to_json()) == users


@pytest.mark.parametrize(
    "make",
    [
        lambda: BusUsers(KEYS[0], (AgentUser("a", KEYS[1], "t"), AgentUser("a", KEYS[2], "t"))),
        lambda: BusUsers(KEYS[0], (AgentUser("a", KEYS[0], "t"),)),  # the bot's key
        lambda: BusUsers(KEYS[0], (AgentUser("a", KEYS[1], "t"), AgentUser("b", KEYS[1], "t"))),
        lambda: AgentUser("a.b", KEYS[1], "t"),  # a dot would widen its subjects
        lambda: AgentUser("a", KEYS[1], "t.*"),
        lambda: AgentUser("a", "SUAAAA", "t"),  # a seed or garbage, not a public key
        lambda: BusUsers("U" + "A" * 55),  # the right shape, a wrong checksum
    ],
)
def test_ambiguous_or_malformed_users_are_refused(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]
