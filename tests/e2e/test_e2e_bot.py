"""The foundation, end to end in encrypted rooms on a real Synapse."""

from __future__ import annotations

import base64
import os
import uuid

import httpx

from bot.pipeline.flow import UNDECRYPTABLE_NOTICE
from bot.services import Soul
from fleetcore import __version__


async def open_room(fleet, *extra_invites: str) -> str:  # type: ignore[no-untyped-def]
    room = await fleet.operator.create_encrypted_room("ops", [fleet.bot_user, *extra_invites])
    await fleet.operator.wait_joined(room, fleet.bot_user)
    return room


async def test_ping_help_status_in_an_encrypted_room(fleet) -> None:  # type: ignore[no-untyped-def]
    room = await open_room(fleet)
    pong = await fleet.operator.ask(room, "!ping")
    assert pong.body == "pong"
    assert pong.msgtype == "m.notice"
    assert pong.source["type"] == "m.room.message"  # decrypted by the operator's client
    assert pong.sender == fleet.bot_user

    help_ = await fleet.operator.ask(room, "!help")
    for name in ("!help", "!ping", "!status"):
        assert name in help_.body

    status = await fleet.operator.ask(room, "!status")
    soul = Soul.load(fleet.cfg.soul)
    assert __version__ in status.body
    assert soul.sha256 in status.body
    # The session's fleet runs on the repository's SOUL.md, unsigned: said plainly.
    assert "SOUL.md is unsigned" in status.body
    assert fleet.cfg.matrix.homeserver in status.body
    assert "Joined rooms: 1" in status.body
    assert "nats: not configured" in status.body
    assert "gitea: not configured" in status.body
    assert "homeserver: ok" in status.body

    unknown = await fleet.operator.ask(room, "!pnig")
    assert "Unknown command" in unknown.body and "!ping" in unknown.body


async def test_non_operator_command_is_refused_and_not_run(fleet) -> None:  # type: ignore[no-untyped-def]
    room = await open_room(fleet, fleet.outsider.user_id)
    await fleet.outsider.join(room)
    await fleet.operator.wait_joined(room, fleet.outsider.user_id)
    event_id = await fleet.outsider.send_text(room, "!status")
    refusal = await fleet.operator.wait_reply(event_id)
    assert "only take commands from this fleet's operators" in refusal.body
    assert "Nothing was run" in refusal.body
    # The refusal is the only answer: the command did not run.
    assert [r.body for r in fleet.operator.replies_to(event_id)] == [refusal.body]


async def test_invite_from_non_operator_is_declined(fleet) -> None:  # type: ignore[no-untyped-def]
    stranger_room = await fleet.outsider.create_encrypted_room("not-ops", [fleet.bot_user])
    # The operator's invite is processed after the stranger's: once the bot is in the
    # operator's room, it has already decided about the stranger's invite.
    await open_room(fleet)
    app = fleet.runner.app
    assert stranger_room not in app.matrix.joined_rooms()
    members = await fleet.outsider.client.joined_members(stranger_room)
    assert fleet.bot_user not in [m.user_id for m in members.members]


async def test_restart_keeps_device_and_answers_nothing_twice(fleet) -> None:  # type: ignore[no-untyped-def]
    room = await open_room(fleet)
    device_before = fleet.runner.app.matrix.device_id
    first = await fleet.operator.send_text(room, "!ping")
    await fleet.operator.wait_reply(first)

    await fleet.runner.restart()
    assert fleet.runner.app.matrix.device_id == device_before

    second = await fleet.operator.send_text(room, "!ping")
    await fleet.operator.wait_reply(second)
    third = await fleet.operator.send_text(room, "!help")
    await fleet.operator.wait_reply(third)
    # Had the restart replayed history, the first ping would have a second answer by now
    # (it would be answered before the later commands in timeline order).
    assert len(fleet.operator.replies_to(first)) == 1
    assert len(fleet.operator.replies_to(second)) == 1


async def test_undecryptable_event_gets_a_notice(fleet) -> None:  # type: ignore[no-untyped-def]
    room = await open_room(fleet)
    await fleet.operator.ask(room, "!ping")  # keys are shared both ways by now
    client = fleet.operator.client
    content = {
        "algorithm": "m.megolm.v1.aes-sha2",
        "sender_key": client.olm.account.identity_keys["curve25519"],
        "device_id": client.device_id,
        "session_id": "unknown-session-" + uuid.uuid4().hex,
        "ciphertext": base64.b64encode(os.urandom(120)).decode().rstrip("="),
    }
    async with httpx.AsyncClient(base_url=fleet.homeserver) as http:
        resp = await http.put(
            f"/_matrix/client/v3/rooms/{room}/send/m.room.encrypted/{uuid.uuid4().hex}",
            json=content,
            headers={"Authorization": f"Bearer {client.access_token}"},
        )
        resp.raise_for_status()
        event_id = resp.json()["event_id"]
    notice = await fleet.operator.wait_reply(event_id)
    assert notice.body == UNDECRYPTABLE_NOTICE
