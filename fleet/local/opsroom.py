"""The operators' room of a local fleet: where crisis alerts and device notices go.

Without one, a crisis alert lands in the room the crisis came from, in front of whoever
else is there. `fleet up` makes one the first time: a private (invite-only), encrypted room
created by the operator, with the bot invited (it joins on an operator's invite). Its ID is
kept in `<state_dir>/operators-room.json` and becomes `operators_room` in the generated
config, so later runs reuse the same room.

The room is made over the client-server API with a short-lived login of the operator
(no encryption keys, so it is never a device anyone shares keys with), logged out at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from fleetcore.proc import ServerStartError
from fleetcore.secrets import write_private

ROOM_FILE = "operators-room.json"
ROOM_NAME = "Fleet operators"
ROOM_TOPIC = (
    "Crisis alerts (who, where, how serious, a link; never the text) and new-device "
    "notices. Lift a hold here with !review clear @user once a human has checked in."
)


def recorded_operators_room(state_dir: Path) -> str | None:
    path = state_dir / ROOM_FILE
    if not path.exists():
        return None
    room = json.loads(path.read_text()).get("room_id")
    return room if isinstance(room, str) else None


async def ensure_operators_room(
    homeserver: str, operator_user: str, operator_password: str, bot_user: str, state_dir: Path
) -> str:
    """The recorded operators' room, or a new one (recorded before it is returned)."""
    known = recorded_operators_room(state_dir)
    if known is not None:
        return known
    async with httpx.AsyncClient(base_url=homeserver, timeout=30) as http:
        token = await _login(http, operator_user, operator_password)
        auth = {"Authorization": f"Bearer {token}"}
        try:
            resp = await http.post(
                "/_matrix/client/v3/createRoom", json=_room_request(bot_user), headers=auth
            )
            if resp.status_code != 200:
                raise ServerStartError(f"could not create the operators' room: {resp.text}")
            room_id = str(resp.json()["room_id"])
        finally:
            await http.post("/_matrix/client/v3/logout", headers=auth)
    write_private(state_dir / ROOM_FILE, json.dumps({"room_id": room_id}))
    return room_id


async def _login(http: httpx.AsyncClient, user_id: str, password: str) -> str:
    resp = await http.post(
        "/_matrix/client/v3/login",
        json={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user_id},
            "password": password,
            "initial_device_display_name": "fleet up (operators' room setup)",
        },
    )
    if resp.status_code != 200:
        raise ServerStartError(f"operator login for the operators' room failed: {resp.text}")
    return str(resp.json()["access_token"])


def _room_request(bot_user: str) -> dict[str, Any]:
    return {
        "name": ROOM_NAME,
        "topic": ROOM_TOPIC,
        "preset": "private_chat",
        "visibility": "private",
        "invite": [bot_user],
        "initial_state": [
            {
                "type": "m.room.encryption",
                "state_key": "",
                "content": {"algorithm": "m.megolm.v1.aes-sha2"},
            },
            # Newcomers (a second operator invited later) do not read earlier alerts.
            {
                "type": "m.room.history_visibility",
                "state_key": "",
                "content": {"history_visibility": "joined"},
            },
        ],
    }
