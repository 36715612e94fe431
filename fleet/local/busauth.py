"""The local fleet's NATS users: who may connect to the nats-server `fleet up` runs.

`fleet up` turns auth on even on loopback: any local process could otherwise read every
task and result, or post as a wolf. The users live in the state directory:

- `nats-keys/bot.nk`, `nats-keys/<agent>.nk`: NKey seeds made here (0600, dir 0700);
  an agent made elsewhere (`fleet agent keygen`) brings only its public key;
- `nats-users.json`: the bot's public key and each agent's name, public key and tier,
  from which `nats/server.conf` is generated (never edited by hand).

Adding or removing an agent rewrites both and reloads a running server at once: a removed
agent's live connection is closed and it cannot connect again.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from fleet.local.nats import ensure_nkey_seed, reload_server, with_jetstream
from fleetcore.bus.auth import AgentUser, BusUsers, server_config
from fleetcore.config.burn import BurnConfig
from fleetcore.proc import PIDFILE, recorded_process
from fleetcore.secrets import write_private

KEYS_DIR = "nats-keys"
USERS_FILE = "nats-users.json"
LOCAL_WOLF = "wolf-1"


def bot_seed_path(state_dir: Path) -> Path:
    return state_dir / KEYS_DIR / "bot.nk"


def agent_seed_path(state_dir: Path, name: str) -> Path:
    return state_dir / KEYS_DIR / f"{name}.nk"


def wolf_config_path(state_dir: Path) -> Path:
    """The local wolf's config: the fleet's, but connecting with the wolf's own key."""
    return state_dir / f"{LOCAL_WOLF}.yaml"


def wolf_config(fleet_config: dict[str, Any], state_dir: Path) -> dict[str, Any]:
    bus = {
        **fleet_config.get("bus", {}),
        "nkey_seed_file": str(agent_seed_path(state_dir, LOCAL_WOLF)),
    }
    return {**fleet_config, "bus": bus}


def _nats_dir(state_dir: Path) -> Path:
    return state_dir / "nats"


def local_users(state_dir: Path) -> BusUsers:
    """The fleet's users; the first run makes the bot's key and one local wolf's, of the
    tier burns use by default."""
    path = state_dir / USERS_FILE
    bot = ensure_nkey_seed(bot_seed_path(state_dir))
    if path.exists():
        users = BusUsers.from_json(path.read_text())
        if users.bot_nkey == bot:
            return users
        users = replace(users, bot_nkey=bot)  # the bot's seed was replaced: follow it
    else:
        wolf = ensure_nkey_seed(agent_seed_path(state_dir, LOCAL_WOLF))
        users = BusUsers(bot, (AgentUser(LOCAL_WOLF, wolf, BurnConfig().default_tier),))
    write_private(path, users.to_json())
    return users


async def _apply(state_dir: Path, users: BusUsers) -> bool:
    """Save `users`; True if a running nats-server reloaded them, False if none runs
    (the next `fleet up` reads them)."""
    write_private(state_dir / USERS_FILE, users.to_json())
    nats_dir = _nats_dir(state_dir)
    config = with_jetstream(server_config(users), nats_dir)
    pid = recorded_process(nats_dir / PIDFILE)
    if pid is None:
        write_private(nats_dir / "server.conf", config)
        return False
    await reload_server(pid, nats_dir / "server.conf", config, nats_dir / "nats.log")
    return True


async def add_agent(state_dir: Path, agent: AgentUser) -> bool:
    """Let `agent` on the bus with an agent's rights (replacing one of the same name)."""
    users = BusUsers.from_json((state_dir / USERS_FILE).read_text())
    return await _apply(state_dir, users.with_agent(agent))


async def remove_agent(state_dir: Path, name: str) -> bool:
    """Take `name` off the bus: a running server closes its connections at once."""
    users = BusUsers.from_json((state_dir / USERS_FILE).read_text())
    return await _apply(state_dir, users.without_agent(name))
