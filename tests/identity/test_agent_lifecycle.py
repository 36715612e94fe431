"""`fleet agent add|list|show|remove` end to end (issue #13), run as a user runs them.

On real parts: nats-server with auth on (the local fleet's users, reloaded on add and
remove), the Gitea stand-in (the sandbox forge held to Gitea's swagger) with the admin's
basic auth, the bot's burn service in this process checking signatures against the
registry, and `fleet wolf` in a subprocess running on the config `fleet agent add` wrote.

While the commands and the wolf run, `ps -eo args` is sampled and every line of their
output and logs is kept: no secret (nsec, NKey seed, Gitea token, admin password) may
appear in either.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleet.local.busauth import USERS_FILE, bot_seed_path, local_users
from fleet.local.nats import NatsServer
from fleetcore.bus.auth import BusUsers, agent_inbox_prefix, server_config
from fleetcore.bus.config import BusConfig
from fleetcore.bus.connect import BusAuthError, connect
from fleetcore.forge.accounts import AGENT_SCOPES
from fleetcore.forge.client import GiteaClient, Unauthorized
from fleetcore.forge.scopes import normalize_scopes
from fleetcore.identity import keystore
from fleetcore.identity.agents import (
    CONFIG_FILE,
    PROFILE_FILE,
    TOKEN_FILE,
    agent_dir,
    archive_root,
    load_facts,
    registered_npub,
)
from fleetcore.identity.nostr import Event
from fleetcore.soul import sign_soul
from fleettest.burnrig import OWNER, REPO, BurnRig

REPO_ROOT = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "admin-pass-for-tests-7Q"
WOLF = "wolf-7"


class RegistryRig(BurnRig):
    """The burn rig's bot, trusting the agent registry on disk as the real bot does."""

    def __init__(self, nats_url: str, state: Path, bus: BusConfig) -> None:
        super().__init__(nats_url, state / "bot", issues=2, bus=bus)
        self.state = state

    def npub_of(self, name: str) -> str | None:
        return registered_npub(self.state, name)


@dataclass
class Fleet:
    state: Path
    config: Path
    nats: NatsServer
    rig: RegistryRig


class PsWatch:
    """Samples every process's command line while it runs (a thread, like `watch ps`)."""

    def __init__(self) -> None:
        self.lines: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=False)
            self.lines.update(out.stdout.splitlines())

    def __enter__(self) -> PsWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def _fleet_config(state: Path, rig: BurnRig, nats: NatsServer) -> Path:
    soul = state / "SOUL.md"
    soul.write_text("# SOUL.md\n\nBe kind.\n")
    key, _ = keystore.fleet_key(state)
    sign_soul(soul, key)
    (state / "gitea-token").write_text(rig.token)
    (state / "gitea-token").chmod(0o600)
    (state / "admin-password").write_text(ADMIN_PASSWORD)
    (state / "admin-password").chmod(0o600)
    data: dict[str, Any] = {
        "state_dir": str(state),
        "soul": str(soul),
        "matrix": {
            "homeserver": "http://127.0.0.1:9",
            "user_id": "@bot:example.org",
            "password": {"file": str(state / "admin-password")},
        },
        "operators": ["@op:example.org"],
        "gitea": {
            "url": rig.gitea.url,
            "token": {"file": str(state / "gitea-token")},
            "admin_user": "fleet",
            "admin_password": {"file": str(state / "admin-password")},
            "retries": 1,
        },
        "projects": {"web": {"repo": f"{OWNER}/{REPO}"}},
        "model": {"default": "fake-1", "provider": "fake"},
        "fallback_providers": [
            {"provider": "fake", "model": "fake-1", "base_url": rig.model.base_url}
        ],
        "bus": {
            "servers": [nats.url],
            "nkey_seed_file": str(bot_seed_path(state)),
            "ack_wait_s": 3,
            "heartbeat_s": 0.3,
            "heartbeat_ttl_s": 1.5,
            "reconnect_wait_s": 0.2,
        },
    }
    path = state / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    nats = NatsServer(state / "nats", config=server_config(local_users(state)))
    await nats.start()
    bus = BusConfig(
        servers=[nats.url],
        nkey_seed_file=bot_seed_path(state),
        ack_wait_s=3,
        heartbeat_s=0.3,
        heartbeat_ttl_s=1.5,
        reconnect_wait_s=0.2,
    )
    try:
        async with RegistryRig(nats.url, state, bus) as rig:
            rig.gitea.set_password("fleet", ADMIN_PASSWORD)
            yield Fleet(state, _fleet_config(state, rig, nats), nats, rig)
            assert rig.gitea.violations == [], rig.gitea.violations
    finally:
        await nats.stop()


def _fleet(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HERMES_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "fleet.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env=env,
        check=False,
    )


async def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(_fleet, *args)


def _files(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mode & 0o777)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


async def _forge_state(admin: GiteaClient, name: str) -> tuple[Any, ...]:
    user = await admin.get_user(name)
    tokens = await admin.list_tokens(name, basic_auth=("fleet", ADMIN_PASSWORD))
    permission = await admin.collaborator_permission(OWNER, REPO, name)
    return (
        user.prohibit_login,
        user.active,
        sorted((t.id, t.name, tuple(t.scopes)) for t in tokens),
        permission,
    )


@pytest.fixture
async def admin(fleet: Fleet) -> AsyncIterator[GiteaClient]:
    client = GiteaClient(fleet.rig.gitea.url, fleet.rig.token, retries=1, backoff_s=0.01)
    yield client
    await client.aclose()


async def test_add_twice_changes_nothing_and_list_show_remove(
    fleet: Fleet, admin: GiteaClient
) -> None:
    config = str(fleet.config)
    first = await _cli("agent", "add", WOLF, "--tier", "wolves", "--config", config)
    assert first.returncode == 0, first.stderr
    folder = agent_dir(fleet.state, WOLF)
    facts = load_facts(fleet.state, WOLF)
    assert facts is not None and facts.tier == "wolves" and facts.gitea_user == WOLF
    assert f"npub {facts.npub}" in first.stdout and "minted Gitea token" in first.stdout
    assert "cannot be revoked" in first.stderr  # said once, when the key is made
    # Private by creation: the folder 0700, every file in it 0600.
    assert folder.stat().st_mode & 0o777 == 0o700
    assert {mode for _, mode in _files(folder).values()} == {0o600}
    # The agent's token: its own user, only the agent's scopes, a collaborator on the repo.
    token = (folder / TOKEN_FILE).read_text().strip()
    async with GiteaClient(fleet.rig.gitea.url, token, retries=1) as mine:
        assert await mine.whoami() == WOLF
    forge_before = await _forge_state(admin, WOLF)
    ((token_id, _, scopes),) = forge_before[2]
    assert token_id == facts.gitea_token_id and scopes == normalize_scopes(AGENT_SCOPES)
    assert forge_before[3] == "write"
    # Its NKey user, with the agent's rights, is on the running server.
    users = BusUsers.from_json((fleet.state / USERS_FILE).read_text())
    assert any(a.name == WOLF and a.nkey == facts.nkey for a in users.agents)
    # The signed kind-0 profile, kept locally.
    profile = Event.from_json((folder / PROFILE_FILE).read_text())
    assert profile.kind == 0 and profile.verify() and profile.npub == facts.npub
    # The agent's config: its own token, seed and key; none of the admin's login.
    agent_cfg = yaml.safe_load((folder / CONFIG_FILE).read_text())
    assert agent_cfg["gitea"]["token"] == {"file": str(folder / TOKEN_FILE)}
    assert "admin_password" not in agent_cfg["gitea"]
    assert agent_cfg["bus"]["nkey_seed_file"] == str(folder / keystore.NKEY_FILE)
    assert agent_cfg["wolves"]["nostr_key_file"] == str(folder / keystore.NOSTR_FILE)

    files_before = _files(folder)
    users_before = (fleet.state / USERS_FILE).read_bytes()
    second = await _cli("agent", "add", WOLF, "--tier", "wolves", "--config", config)
    assert second.returncode == 0, second.stderr
    assert "nothing changed" in second.stdout, second.stdout
    assert _files(folder) == files_before
    assert (fleet.state / USERS_FILE).read_bytes() == users_before
    assert await _forge_state(admin, WOLF) == forge_before

    listed = await _cli("agent", "list", "--config", config)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["NAME", "TIER", "NPUB", "NKEY", "GITEA", "HEARTBEAT"]
    assert row.split() == [WOLF, "wolves", facts.npub, facts.nkey, WOLF, "-"]
    shown = await _cli("agent", "show", WOLF, "--config", config)
    assert shown.returncode == 0, shown.stderr
    assert f"npub: {facts.npub}" in shown.stdout and f"nkey: {facts.nkey}" in shown.stdout
    assert f"gitea token id: {facts.gitea_token_id}" in shown.stdout
    missing = await _cli("agent", "show", "nobody", "--config", config)
    assert missing.returncode == 1 and "no agent named nobody" in missing.stderr

    removed = await _cli("agent", "remove", WOLF, "--config", config)
    assert removed.returncode == 0, removed.stderr
    assert "cannot be revoked" in removed.stderr and facts.npub in removed.stderr
    # Gitea: the token is refused, the user disabled (kept, so its comments keep an author).
    async with GiteaClient(fleet.rig.gitea.url, token, retries=0) as mine:
        with pytest.raises(Unauthorized):
            await mine.whoami()
    user = await admin.get_user(WOLF)
    assert user.prohibit_login
    assert await admin.list_tokens(WOLF, basic_auth=("fleet", ADMIN_PASSWORD)) == []
    # NATS: the user is gone from the running server's config.
    users = BusUsers.from_json((fleet.state / USERS_FILE).read_text())
    assert not any(a.name == WOLF for a in users.agents)
    # The keys are archived, not deleted, and no longer trusted; the dead token is gone.
    assert not folder.exists()
    (archived,) = archive_root(fleet.state).iterdir()
    assert (archived / keystore.NOSTR_FILE).exists() and not (archived / TOKEN_FILE).exists()
    assert registered_npub(fleet.state, WOLF) is None
    assert (await _cli("agent", "list", "--config", config)).stdout.splitlines()[1:] == []
    again = await _cli("agent", "remove", WOLF, "--config", config)
    assert again.returncode == 1 and f"no agent named {WOLF}" in again.stderr


def _secrets(state: Path, folder: Path) -> dict[str, str]:
    return {
        "nsec": (folder / keystore.NOSTR_FILE).read_text().strip(),
        "agent seed": (folder / keystore.NKEY_FILE).read_text().strip(),
        "agent token": (folder / TOKEN_FILE).read_text().strip(),
        "admin password": ADMIN_PASSWORD,
        "admin token": (state / "gitea-token").read_text().strip(),
        "bot seed": bot_seed_path(state).read_text().strip(),
    }


def _read(path: Path) -> str:
    return path.read_text(errors="replace")


async def _start_wolf(config: Path, log_path: Path) -> asyncio.subprocess.Process:
    """`fleet wolf` as a user starts it: only the config's path on its command line."""
    with log_path.open("wb") as log_file:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fleet.cli",
            "wolf",
            "--name",
            WOLF,
            "--config",
            str(config),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )


@pytest.fixture
def wolf_log(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "wolf.log"
    yield path


async def test_a_wolf_runs_as_itself_and_no_secret_shows_in_ps_or_logs(
    fleet: Fleet, wolf_log: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = str(fleet.config)
    outputs: list[str] = []
    with PsWatch() as ps:
        added = await _cli("agent", "add", WOLF, "--config", config)
        outputs += [added.stdout, added.stderr]
        assert added.returncode == 0, added.stderr
        folder = agent_dir(fleet.state, WOLF)
        wolf = await _start_wolf(folder / CONFIG_FILE, wolf_log)
        try:
            burn_id = await fleet.rig.burn(limit=2)
            await fleet.rig.wait_finished(burn_id, timeout=90)
            listed = await _cli("agent", "list", "--config", config)
            outputs += [listed.stdout, listed.stderr]
        finally:
            wolf.terminate()
            await asyncio.wait_for(wolf.wait(), 30)

    # The comments are the wolf's own: authored by its Gitea user, not the fleet's admin.
    for n in (1, 2):
        authors = {
            c["user"]
            for c in fleet.rig.gitea.comments(OWNER, REPO, n)
            if "fleet-task:" in c["body"]
        }
        assert authors == {WOLF}, fleet.rig.gitea.comments(OWNER, REPO, n)
    # Its signed results were accepted: the burn counted both.
    final = fleet.rig.room.current(fleet.rig.room.messages[0][0])
    assert "2/2" in final and "done 2" in final, final
    assert not [r for r in caplog.records if r.getMessage() == "result_refused"]
    # `fleet agent list` saw its heartbeat while it ran.
    row = listed.stdout.splitlines()[1].split()
    assert row[0] == WOLF and row[-1] == "ago", listed.stdout

    secrets = _secrets(fleet.state, folder)
    logs = "\n".join([*outputs, _read(wolf_log), caplog.text])
    assert any("fleet.cli wolf" in line for line in ps.lines)  # the watch did see it run
    for what, secret in secrets.items():
        assert len(secret) >= 16, what
        assert not [line for line in ps.lines if secret in line], f"{what} in ps"
        assert secret not in logs, f"{what} in the output or logs"
    # A removed agent's live connection is refused at once, and it cannot come back.
    removed = await _cli("agent", "remove", WOLF, "--config", config)
    assert removed.returncode == 0, removed.stderr
    (archived,) = archive_root(fleet.state).iterdir()
    with pytest.raises(BusAuthError):
        await connect(
            BusConfig(servers=[fleet.nats.url], nkey_seed_file=archived / keystore.NKEY_FILE),
            WOLF,
            inbox_prefix=agent_inbox_prefix(WOLF),
            first_connect_timeout_s=5,
        )
