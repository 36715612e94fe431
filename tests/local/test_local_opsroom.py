"""`fleet up`'s operators' room: private, encrypted, the bot invited, made once."""

from __future__ import annotations

from pathlib import Path

import httpx

from fleet.local.opsroom import ROOM_FILE, ensure_operators_room, recorded_operators_room
from fleet.local.synapse import SynapseServer


async def _login(http: httpx.AsyncClient, user: str, password: str) -> dict[str, str]:
    resp = await http.post(
        "/_matrix/client/v3/login",
        json={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": password,
        },
    )
    resp.raise_for_status()
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


async def test_operators_room_is_private_encrypted_and_made_once(
    synapse: SynapseServer, tmp_path: Path
) -> None:
    op = await synapse.register("opsroomop")
    bot = await synapse.register("opsroombot")
    room = await ensure_operators_room(synapse.url, op.user_id, op.password, bot.user_id, tmp_path)
    assert recorded_operators_room(tmp_path) == room
    assert (tmp_path / ROOM_FILE).stat().st_mode & 0o077 == 0
    # The next run reuses it: same room, no new login needed.
    again = await ensure_operators_room(
        synapse.url, op.user_id, "wrong-password", bot.user_id, tmp_path
    )
    assert again == room

    async with httpx.AsyncClient(base_url=synapse.url) as http:
        auth = await _login(http, op.user_id, op.password)
        state = (await http.get(f"/_matrix/client/v3/rooms/{room}/state", headers=auth)).json()
        devices = (await http.get("/_matrix/client/v3/devices", headers=auth)).json()
    by_type = {(e["type"], e["state_key"]): e["content"] for e in state}
    assert by_type[("m.room.encryption", "")]["algorithm"] == "m.megolm.v1.aes-sha2"
    assert by_type[("m.room.join_rules", "")]["join_rule"] == "invite"
    assert by_type[("m.room.member", bot.user_id)]["membership"] == "invite"
    assert by_type[("m.room.member", op.user_id)]["membership"] == "join"
    # The setup login was logged out: its device is gone.
    names = [d.get("display_name") for d in devices["devices"]]
    assert "fleet up (operators' room setup)" not in names
