"""The local fleet's NATS users: who may connect to the nats-server `fleet up` runs.

`fleet up` turns auth on even on loopback: any local process could otherwise read every
task and result, or post as a wolf. The users live in the state directory:

- `nats-keys/bot.nk`, `nats-keys/<agent>.nk`: NKey seeds made here (0600, dir 0700);
  an agent made elsewhere (`fleet agent keygen`) brings only its public key;
- `nats-users.json`: the bot's public key and each agent's name, public key and tier,
  from which `nats/server.conf` is generated (never edited by hand).

Adding or removing an agent rewrites both and reloads a running server at once: a removed
agent's live connection is closed and it cannot connect again. With `fleet up
--nats-cluster N` every node has its own config file (fleet/local/cluster.py) and
authorizes its own clients: each is rewritten and reloaded, or a removed agent would
still get on through a node that kept the old users.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from fleet.local.cluster import node_dirs, with_users
from fleet.local.nats import ReloadError, ensure_nkey_seed, reload_server, with_jetstream
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


async def _apply(state_dir: Path, users: BusUsers) -> int:
    """Save `users`; returns how many running nats-servers reloaded them (0: none runs,
    the next `fleet up` reads them).

    Every node of a local cluster is reloaded, not just one: a node that failed to reload
    does not stop the others, and is named in the `ReloadError` raised after them all.
    """
    write_private(state_dir / USERS_FILE, users.to_json())
    users_config = server_config(users)
    nats_dir = _nats_dir(state_dir)
    servers = [(nats_dir, with_jetstream(users_config, nats_dir))]
    for node in node_dirs(state_dir):
        try:
            current = (node / "server.conf").read_text()
        except FileNotFoundError:
            continue  # never started: `fleet up` writes it from the users file
        servers.append((node, with_users(current, users_config)))
    reloaded = 0
    failed: list[str] = []
    for data_dir, config in servers:
        pid = recorded_process(data_dir / PIDFILE)
        if pid is None:
            write_private(data_dir / "server.conf", config)
            continue
        try:
            await reload_server(pid, data_dir / "server.conf", config, data_dir / "nats.log")
        except ReloadError as exc:
            failed.append(f"{data_dir.name}: {exc}")
            continue
        reloaded += 1
    if failed:
        raise ReloadError("nats-server did not take the new users:\n" + "\n".join(failed))
    return reloaded


async def add_agent(state_dir: Path, agent: AgentUser) -> int:
    """Let `agent` on the bus with an agent's rights (replacing one of the same name)."""
    users = BusUsers.from_json((state_dir / USERS_FILE).read_text())
    return await _apply(state_dir, users.with_agent(agent))


async def remove_agent(state_dir: Path, name: str) -> int:
    """Take `name` off the bus: a running server closes its connections at once."""
    users = BusUsers.from_json((state_dir / USERS_FILE).read_text())
    return await _apply(state_dir, users.without_agent(name))
