"""Gitea and burns from an encrypted project room, on a real Synapse and a real nats-server.

The forge is the stand-in (every request and response checked against Gitea's swagger);
the wolf runs in-process on a fake model server that speaks the OpenAI wire format.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agents.wolf import build_wolf
from bot.forge.cli import install_hook
from fleet.local.nats import NatsServer
from fleetcore.config import FleetConfig
from fleetcore.identity import keystore
from fleetcore.identity.agents import FACTS_FILE, AgentFacts, agent_dir
from fleetcore.proc import free_port
from fleetcore.secrets import write_private
from fleettest.gitea_standin import GiteaStandin
from fleettest.models_fake import FakeProvider, ok, triage_reply
from tests.e2e.conftest import Fleet, FleetFactory

SECRET = "e2e-webhook-secret"


@pytest.fixture
async def forge(tmp_path: Path) -> AsyncIterator[GiteaStandin]:
    async with GiteaStandin() as g:
        yield g
        assert g.violations == [], g.violations


async def forge_fleet(
    fleet_factory: FleetFactory,
    forge: GiteaStandin,
    nats: NatsServer,
    model: FakeProvider,
    tmp: Path,
) -> Fleet:
    token = forge.add_user("fleet", admin=True)
    forge.add_repo("acme", "web")
    forge.add_collaborator("acme", "web", "fleet", "admin")
    (tmp / "gitea-token").write_text(token)
    (tmp / "hook-secret").write_text(SECRET)
    port = free_port()
    return await fleet_factory(
        gitea={
            "url": forge.url,
            "token": {"file": str(tmp / "gitea-token")},
            "webhook": {
                "port": port,
                "secret": {"file": str(tmp / "hook-secret")},
                "public_url": f"http://127.0.0.1:{port}/webhooks/gitea",
                "batch_window_s": 0.2,
            },
        },
        bus={
            "servers": [nats.url],
            "ack_wait_s": 5,
            "heartbeat_s": 0.5,
            "heartbeat_ttl_s": 2,
            "reconnect_wait_s": 0.2,
        },
        burn={"edit_interval_s": 0.5, "digest_interval_s": 5},
        model={"default": "fake-1", "provider": "fake"},
        fallback_providers=[{"provider": "fake", "model": "fake-1", "base_url": model.base_url}],
    )


def registered_wolf(cfg: FleetConfig, name: str) -> FleetConfig:
    """The wolf's config with its own Nostr key, registered as `fleet agent add` would: the
    bot reports only results signed by the key its registry holds for the wolf."""
    folder = agent_dir(cfg.state_dir, name)
    ident = keystore.keygen(folder, name)
    facts = AgentFacts(name, "wolves", ident.npub, ident.nkey)
    write_private(folder / FACTS_FILE, facts.to_yaml())
    wolves = cfg.wolves.model_copy(update={"nostr_key_file": folder / keystore.NOSTR_FILE})
    return cfg.model_copy(update={"wolves": wolves})


async def project_room(fleet: Fleet) -> str:
    ops = await fleet.operator.create_encrypted_room("ops", [fleet.bot_user])
    await fleet.operator.wait_joined(ops, fleet.bot_user)
    reply = await fleet.operator.ask(ops, "!project add web acme/web", timeout=60)
    m = re.search(r"room (![^ ]+)", reply.body)
    assert m, reply.body
    room = m.group(1)
    await fleet.operator.join(room)
    listing = await fleet.operator.ask(ops, "!project list")
    assert "web: acme/web" in listing.body
    return room


def bot_messages(fleet: Fleet, room: str, after: float) -> list[Any]:
    return [
        s
        for s in fleet.operator.seen
        if s.room_id == room and s.sender == fleet.bot_user and s.received_at > after
    ]


@pytest.mark.timeout(240)
async def test_issue_webhook_and_burn_from_an_encrypted_project_room(
    fleet_factory: FleetFactory, forge: GiteaStandin, own_nats: NatsServer, tmp_path: Path
) -> None:
    async with FakeProvider("openai", ok(triage_reply)) as model:
        fleet = await forge_fleet(fleet_factory, forge, own_nats, model, tmp_path)
        room = await project_room(fleet)

        # !issue: title, Markdown body on the following lines, the `ready` label.
        body = "Steps:\n\n1. open `/login`\n2. **boom**"
        reply = await fleet.operator.ask(room, "!issue Login breaks on Safari\n" + body)
        m = re.match(r"Opened #(\d+): Login breaks on Safari\n(\S+)", reply.body)
        assert m, reply.body
        number = int(m.group(1))
        stored = forge.issue("acme", "web", number)
        assert (stored["title"], stored["body"], stored["labels"]) == (
            "Login breaks on Safari",
            body,
            ["ready"],
        )
        assert m.group(2).endswith(f"/acme/web/issues/{number}")
        empty = await fleet.operator.ask(room, "!issue")
        assert "needs a title" in empty.body

        # The hook, installed through Gitea's API; a person's comment becomes a notice.
        code, text = await install_hook(fleet.cfg, "web")
        assert code == 0, text
        assert len(forge.hooks("acme", "web")) == 1
        alice = forge.add_user("alice")
        forge.add_collaborator("acme", "web", "alice", "write")
        hook_url = fleet.cfg.gitea.webhook.public_url  # type: ignore[union-attr]

        # A badly signed delivery is refused before parsing and posts nothing.
        forged = json.dumps({"action": "created", "comment": {"body": "FORGED-TEXT"}}).encode()
        async with httpx.AsyncClient() as http:
            bad = await http.post(
                hook_url,
                content=forged,
                headers={
                    "X-Gitea-Event": "issue_comment",
                    "X-Gitea-Delivery": "bad-1",
                    "X-Gitea-Signature": hmac.new(b"wrong", forged, hashlib.sha256).hexdigest(),
                },
            )
            assert bad.status_code == 401
            posted = await http.post(
                f"{forge.url}/api/v1/repos/acme/web/issues/{number}/comments",
                json={"body": "Same on Firefox 133"},
                headers={"Authorization": f"token {alice}"},
            )
            assert posted.status_code == 201
        await forge.deliveries_settled()
        assert [d.status for d in forge.deliveries if d.event == "issue_comment"] == [200]
        notice = await fleet.operator.wait_for(
            lambda: [
                s
                for s in fleet.operator.seen
                if s.room_id == room and "Same on Firefox 133" in s.body
            ],
            timeout=30,
        )
        assert "💬 alice" in notice[0].body and f"#{number}" in notice[0].body
        assert not [s for s in fleet.operator.seen if "FORGED-TEXT" in s.body]

        # A burn over the backlog with one wolf: one progress message, edited to the end.
        for n in range(5):
            forge.add_issue("acme", "web", f"Editor loses draft {n}", "It vanishes on save.")
        wolf, gitea, chain = build_wolf(registered_wolf(fleet.cfg, "wolf-1"), "wolf-1", "wolves")
        wolf_task = asyncio.create_task(wolf.run())
        try:
            before = time.perf_counter()
            burn = await fleet.operator.send_text(room, "!burn --limit 10")
            final = await fleet.operator.wait_for(
                lambda: [
                    s
                    for s in fleet.operator.seen
                    if s.room_id == room
                    and s.replaces
                    and s.body.lstrip("* ").startswith("Burn finished")
                ],
                timeout=120,
            )
            assert "6/6" in final[-1].body, final[-1].body
            sent = [s for s in bot_messages(fleet, room, before) if s.replaces is None]
            assert 1 <= len(sent) <= 5, [s.body for s in sent]
            assert not fleet.operator.replies_to(burn)  # the progress message is the answer
            for n in range(1, 7):
                triage = [c for c in forge.comments("acme", "web", n) if "fleet-task:" in c["body"]]
                assert len(triage) == 1, (n, forge.comments("acme", "web", n))
                assert "triaged" in forge.issue("acme", "web", n)["labels"]
            status = await fleet.operator.ask(room, "!status")
            assert "nats: ok" in status.body and "gitea: ok" in status.body
            assert "wolf-1 [wolves]" in status.body
            agents = await fleet.operator.ask(room, "!agents")
            assert "wolf-1" in agents.body
        finally:
            wolf.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(wolf_task, 15)
            await gitea.aclose()
            await chain.aclose()


@pytest.mark.timeout(180)
async def test_issue_commands_in_a_project_room(
    fleet_factory: FleetFactory, forge: GiteaStandin, own_nats: NatsServer, tmp_path: Path
) -> None:
    async with FakeProvider("openai", ok(triage_reply)) as model:
        fleet = await forge_fleet(fleet_factory, forge, own_nats, model, tmp_path)
        ops = await fleet.operator.create_encrypted_room("elsewhere", [fleet.bot_user])
        await fleet.operator.wait_joined(ops, fleet.bot_user)
        nowhere = await fleet.operator.ask(ops, "!issue Orphan")
        assert "not a project room" in nowhere.body
        missing = await fleet.operator.ask(ops, "!project add ghost acme/ghost")
        assert "no repo acme/ghost" in missing.body and "Nothing was created" in missing.body
        room = await project_room(fleet)

        for n in range(25):
            forge.add_issue("acme", "web", f"Backlog item {n}", labels=["burn"] if n < 3 else [])
        first = await fleet.operator.ask(room, "!issues")
        assert first.body.startswith("Open issues in acme/web (page 1/2):"), first.body
        assert "More: `!issues open --page 2`" in first.body
        second = await fleet.operator.ask(room, "!issues open --page 2")
        assert "(page 2/2)" in second.body
        labelled = await fleet.operator.ask(room, "!issues --label burn")
        assert labelled.body.count("\n- #") == 3, labelled.body

        commented = await fleet.operator.ask(room, "!comment #2 Reproduced on **main**")
        assert commented.body.startswith("Commented on #2")
        assert forge.comments("acme", "web", 2)[-1]["body"] == "Reproduced on **main**"
        closed = await fleet.operator.ask(room, "!close #2 fixed in 1.2")
        assert closed.body == "Closed #2 with your comment."
        assert forge.issue("acme", "web", 2)["state"] == "closed"
        assert forge.comments("acme", "web", 2)[-1]["body"] == "fixed in 1.2"
        # Options go anywhere on the line; the title is the rest, as typed.
        flagged = await fleet.operator.ask(room, "!issue Flaky --label bug upload test")
        flagged_no = int(re.match(r"Opened #(\d+)", flagged.body).group(1))  # type: ignore[union-attr]
        assert forge.issue("acme", "web", flagged_no)["labels"] == ["bug"]
        assert forge.issue("acme", "web", flagged_no)["title"] == "Flaky upload test"
        # A title over Gitea's limit is refused, and never quoted back into the room.
        pasted = "stack trace line " * 40
        long_title = await fleet.operator.ask(room, "!issue " + pasted)
        assert "too long for Gitea" in long_title.body, long_title.body
        assert "stack trace line stack" not in long_title.body
        nio_room = fleet.operator.client.rooms[room]
        assert nio_room.name == "web" and nio_room.topic == f"{forge.url}/acme/web"
        assert nio_room.encrypted
        listed = await fleet.operator.ask(room, "!issues closed")
        assert "- #2 Backlog item 1" in listed.body
        no_such = await fleet.operator.ask(room, "!close #999")
        assert "has no issue #999" in no_such.body
        bad = await fleet.operator.ask(room, "!close twelve")
        assert "is not an issue number" in bad.body

        forge.fail_next(4, 503)  # the first try and the client's 3 retries
        down = await fleet.operator.ask(room, "!issue Gitea is down", timeout=60)
        assert "Gitea is not reachable right now" in down.body
        assert "Nothing was changed" in down.body
        titles = [forge.issue("acme", "web", n)["title"] for n in range(1, 26)]
        assert "Gitea is down" not in titles
