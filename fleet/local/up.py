"""`fleet up` and `fleet demo`: the whole fleet on this machine, on embedded defaults.

Everything lives under one state directory (default `./.fleet/`) and is reused by the next
run: the homeserver's database, the accounts (passwords generated once, stored 0600), the
bot's device and keys, and the sandbox forge's SQLite file (its issues, comments, labels and
hooks). The ports are kept in `ports.json`. Ctrl-C stops every process this command started;
a `kill -9` takes its servers with it. One `fleet up` per state directory (`fleet.lock`).
Nothing here reads the source tree: an installed wheel runs it from any directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import yaml

from fleet.local.botrunner import BotRunner
from fleet.local.busauth import (
    LOCAL_WOLF,
    bot_seed_path,
    local_users,
)
from fleet.local.cluster import NatsCluster, bus_servers, local_cluster, node_dirs, ports_to_keep
from fleet.local.nats import NatsServer
from fleet.local.opsroom import ensure_operators_room
from fleet.local.synapse import Account, SynapseServer
from fleet.sandbox.forge import DEFAULT_PORT as FORGE_PORT
from fleet.sandbox.forge import SandboxForge
from fleetcore.bus.auth import server_config
from fleetcore.config import FleetConfig, load_config
from fleetcore.config.burn import BurnConfig
from fleetcore.identity.agents import CONFIG_FILE, agent_dir
from fleetcore.proc import (
    PIDFILE,
    ServerStartError,
    StateLock,
    check_port_free,
    free_port,
    port_holder,
    stop_orphan,
)
from fleetcore.secrets import read_private, write_new_private, write_private
from fleetcore.soul import Soul

BOT = "hermes"
FORGE_ADMIN = "fleet"
ADMIN_PASSWORD_FILE = "gitea-admin-password"
OPERATOR = "operator"
SANDBOX_REPO = ("operator", "sandbox")
SANDBOX_ISSUES = (
    ("Editor loses the draft on save", "Type a paragraph, press **Save**, reload: it is gone."),
    ("Login form accepts an empty password", "The form submits and shows a blank page."),
    ("Dark mode: code blocks are unreadable", "Grey on grey in `pre` blocks."),
)


class _Ports:
    """`ports.json`: the ports of the first run, kept by every later one.

    Running wolves hold the NATS URL, Element the homeserver's, the forge's hooks the
    webhook's: a port that moved would strand them all. So a kept port that another process
    holds is an error naming that process, never a silent move. Only the first run picks:
    nats-server (`-p -1`) and Synapse (port 0) bind a free port themselves, and we record
    the one they got; the forge falls back to a free port; the bot's webhook URL goes into
    the config before the bot starts, so it takes the default if free, else a free one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.saved: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}

    def check_kept(self) -> None:
        """All at once, before any server starts: a taken port fails in a moment."""
        for name, port in self.saved.items():
            check_port_free(
                port,
                name,
                f"stop that, or change '{name}' in {self.path} (clients and wolves know "
                "this port, so it is never moved silently)",
            )

    def needed_before_start(self, name: str, default: int) -> int:
        if name not in self.saved:
            self.keep(name, default if _bindable(default) else free_port())
        return self.saved[name]

    def keep(self, name: str, port: int) -> None:
        if self.saved.get(name) != port:
            self.saved[name] = port
            write_private(self.path, json.dumps(self.saved))


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _private_dir(path: Path) -> Path:
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


async def _stop_orphans(state_dir: Path) -> None:
    """Servers that a killed `fleet up` left running on this state directory's stores.

    Started to die with their parent, they should be gone; one that is not (no `setpriv`,
    or killed in the instant between fork and exec) is stopped here, under the lock, so it
    is no other live fleet's.
    """
    nodes = [("nats-server", str(d.relative_to(state_dir))) for d in node_dirs(state_dir)]
    for what, data_dir in (("nats-server", "nats"), ("synapse", "synapse"), *nodes):
        pid = await stop_orphan(state_dir / data_dir / PIDFILE, what)
        if pid is not None:
            print(
                f"fleet: stopped {what} (pid {pid}), left running on {state_dir / data_dir} "
                "by an earlier run that was killed",
                file=sys.stderr,
                flush=True,
            )


class LocalFleet:
    """A running local fleet, built whole by `LocalFleet.running()`: servers, accounts,
    config; everything it started stops when that context ends."""

    def __init__(
        self,
        state_dir: Path,
        *,
        nats: NatsServer | NatsCluster,
        synapse: SynapseServer,
        forge: SandboxForge,
        accounts: dict[str, Account],
        new_accounts: bool,
        operators_room: str,
        webhook_port: int,
        extra_config: dict[str, Any],
    ) -> None:
        self.state_dir = state_dir
        self.nats = nats
        self.synapse = synapse
        self.forge = forge
        self.accounts = accounts
        self.new_accounts = new_accounts
        # The private room for crisis alerts (fleet/local/opsroom.py).
        self.operators_room = operators_room
        self.webhook_port = webhook_port
        # Extra config (the demo adds its fake model provider).
        self.extra_config = extra_config
        self.forge_users = {"alice": forge.token("alice")}
        self.ports_path = state_dir / "ports.json"
        self.accounts_path = state_dir / "accounts.json"
        self.config_path = state_dir / "config.yaml"
        # Your additions to the generated config (model providers, projects...).
        self.overlay_path = state_dir / "extra.yaml"

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls, state_dir: Path, extra_config: dict[str, Any] | None = None, nats_cluster: int = 0
    ) -> AsyncIterator[LocalFleet]:
        """One fleet per state directory: a second `fleet up` on it is refused (the lock).

        `nats_cluster`: that many nats-servers in one JetStream cluster (fleet/local/
        cluster.py) instead of one, and every stream and bucket replicated on all of them.
        """
        state_dir = _private_dir(state_dir)
        lock = StateLock.acquire(state_dir)
        try:
            async with contextlib.AsyncExitStack() as stack:
                await _stop_orphans(state_dir)
                ports = _Ports(state_dir / "ports.json")
                ports.check_kept()
                webhook_port = ports.needed_before_start("webhook", 8787)
                # Auth on even on loopback: the bot's user and one per agent (busauth.py).
                nats: NatsServer | NatsCluster
                if nats_cluster:
                    nats = local_cluster(
                        state_dir, nats_cluster, server_config(local_users(state_dir)), ports.saved
                    )
                    await nats.start()
                    stack.push_async_callback(nats.stop)
                    for name, port in ports_to_keep(nats).items():
                        ports.keep(name, port)
                else:
                    nats = NatsServer(
                        state_dir / "nats",
                        port=ports.saved.get("nats"),
                        config=server_config(local_users(state_dir)),
                    )
                    await nats.start()
                    stack.push_async_callback(nats.stop)
                    if nats.port is None:  # start() sets it from the server's own report
                        raise ServerStartError("nats-server did not report its port")
                    ports.keep("nats", nats.port)
                synapse = SynapseServer(state_dir / "synapse", port=ports.saved.get("synapse"))
                await synapse.start()
                stack.push_async_callback(synapse.stop)
                if synapse.port is None:  # start() sets it from the listening socket
                    raise ServerStartError("synapse did not report its port")
                ports.keep("synapse", synapse.port)
                accounts, new_accounts = await _accounts(state_dir, synapse)
                op = accounts["operator"]
                operators_room = await ensure_operators_room(
                    synapse.url, op.user_id, op.password, accounts["bot"].user_id, state_dir
                )
                forge = await _sandbox_forge(state_dir, ports)
                stack.push_async_callback(_close_forge, forge)
                fleet = cls(
                    state_dir,
                    nats=nats,
                    synapse=synapse,
                    forge=forge,
                    accounts=accounts,
                    new_accounts=new_accounts,
                    operators_room=operators_room,
                    webhook_port=webhook_port,
                    extra_config=extra_config or {},
                )
                fleet._write_config()
                await fleet._provision_wolf()
                yield fleet
        finally:
            lock.release()

    def _soul_path(self) -> Path:
        """The packaged SOUL.md, written to the state directory the first time: edit it
        there (or set `soul:` in extra.yaml); a later release never overwrites it."""
        path = self.state_dir / "SOUL.md"
        if not path.exists():
            path.write_text(Soul.packaged().text, encoding="utf-8")
        return path

    def render_config(self) -> dict[str, Any]:
        hook_url = f"http://127.0.0.1:{self.webhook_port}/webhooks/gitea"
        return {
            "state_dir": str(self.state_dir),
            "soul": str(self._soul_path()),
            "matrix": {
                "homeserver": self.synapse.url,
                "user_id": self.accounts["bot"].user_id,
                "password": {"file": str(self.state_dir / "bot-password")},
                # A local fleet trusts operator devices on first sight, cross-signed or
                # not, so a fresh Element login works at once.
                "trust": {"policy": "identity-tofu", "allow_unsigned_devices": True},
            },
            "operators": [self.accounts["operator"].user_id],
            **({"operators_room": self.operators_room} if self.operators_room else {}),
            "gitea": {
                "url": self.forge.url,
                "token": {"file": str(self.state_dir / "gitea-token")},
                # The admin's login mints the agents' own tokens (`fleet agent add`).
                "admin_user": FORGE_ADMIN,
                "admin_password": {"file": str(self.state_dir / ADMIN_PASSWORD_FILE)},
                "webhook": {
                    "port": self.webhook_port,
                    "secret": {"file": str(self.state_dir / "webhook-secret")},
                    "public_url": hook_url,
                    "batch_window_s": 1.0,
                },
            },
            "bus": {
                **bus_servers(self.nats),
                "nkey_seed_file": str(bot_seed_path(self.state_dir)),
            },
            "burn": {"edit_interval_s": 1.0, "digest_interval_s": 10},
            **self._overlay(),
            **self.extra_config,
        }

    def _overlay(self) -> dict[str, Any]:
        if not self.overlay_path.exists():
            return {}
        data = yaml.safe_load(self.overlay_path.read_text()) or {}
        if not isinstance(data, dict):
            raise ServerStartError(f"{self.overlay_path}: expected a mapping of config keys")
        return data

    def _write_config(self) -> None:
        config = self.render_config()
        write_private(self.config_path, yaml.safe_dump(config, sort_keys=False))

    @property
    def wolf_config_path(self) -> Path:
        return agent_dir(self.state_dir, LOCAL_WOLF) / CONFIG_FILE

    async def _provision_wolf(self) -> None:
        """One wolf made as `fleet agent add` makes any (fleet/agentctl.py): its own keys,
        Gitea user and scoped token, NATS user and config. Idempotent: later runs change
        nothing, unless something was revoked or lost, which they then restore."""
        from fleet.agentctl import AgentError, add_agent

        try:
            await add_agent(
                self.config_path,
                LOCAL_WOLF,
                BurnConfig().default_tier,
                extra_repos=["/".join(SANDBOX_REPO)],
            )
        except AgentError as exc:
            raise ServerStartError(f"cannot provision {LOCAL_WOLF}: {exc}") from None

    def load(self) -> FleetConfig:
        return load_config(self.config_path)

    def instructions(self) -> str:
        op = self.accounts["operator"]
        lines = [
            "",
            "Hermes fleet is up.",
            f"  Homeserver (Element: 'Edit' the server): {self.synapse.url}",
            f"  Operator user: {op.user_id}",
        ]
        if self.new_accounts:
            lines.append(f"  Operator password: {op.password}   (shown once; stored 0600 in")
            lines.append(f"      {self.accounts_path})")
        else:
            lines.append(f"  Operator password: stored in {self.accounts_path}")
        lines += [
            f"  Bot: {self.accounts['bot'].user_id}: create a room and invite it, then type !help",
            "  Crisis alerts go to the private room 'Fleet operators' (already joined).",
            "  Sandbox forge (Gitea's API, kept in "
            + f"{self.state_dir / 'gitea' / 'forge.db'}): "
            + self.forge.url,
            f"      try: !project add sandbox {'/'.join(SANDBOX_REPO)}",
            f"  NATS: {self.nats.url}. Wolves need models: put `model:` "
            f"and `fallback_providers:` in {self.overlay_path},",
            f"      restart, then: fleet wolf --config {self.wolf_config_path} --name {LOCAL_WOLF}",
            f"  State: {self.state_dir}    Ctrl-C stops everything.",
            "",
        ]
        if isinstance(self.nats, NatsCluster):
            lines.insert(
                -2,
                f"  NATS cluster: {self.nats.size} JetStream nodes, every stream on each "
                f"(bus.replicas {self.nats.size}): {', '.join(self.nats.urls)}",
            )
        return "\n".join(lines)


async def _accounts(state_dir: Path, synapse: SynapseServer) -> tuple[dict[str, Account], bool]:
    """The bot's and the operator's accounts: made on the first run, then read back."""
    accounts_path = state_dir / "accounts.json"
    if accounts_path.exists():
        saved = json.loads(accounts_path.read_text())
        return {k: Account(**v) for k, v in saved.items()}, False
    accounts = {
        role: await synapse.register(localpart, password=secrets.token_urlsafe(18))
        for role, localpart in (("bot", BOT), ("operator", OPERATOR))
    }
    write_private(accounts_path, json.dumps({k: v.__dict__ for k, v in accounts.items()}, indent=1))
    write_private(state_dir / "bot-password", accounts["bot"].password)
    return accounts, True


async def _sandbox_forge(state_dir: Path, ports: _Ports) -> SandboxForge:
    """The sandbox Gitea (fleet/sandbox/forge.py), so forge commands and burns work at once.

    It keeps its data in `gitea/forge.db` under the state directory and is seeded once:
    a `fleet` admin (the bot's token), `alice` (a collaborator) and a repo with issues.
    Point `gitea:` at a real Gitea for work that must last.
    """
    kept = ports.saved.get("gitea")
    port = kept if kept is not None else FORGE_PORT
    try:
        forge = SandboxForge(
            db_path=state_dir / "gitea" / "forge.db",
            port=port,
            # The first run may move off a taken default; later runs keep the port or fail.
            port_fallback=kept is None,
        )
    except OSError as exc:  # the kept port, taken since check_kept()
        raise ServerStartError(
            f"port {port} for gitea is in use by {port_holder(port)}: {exc}"
        ) from None
    try:
        await forge.start()
    except BaseException:
        forge.close()
        raise
    ports.keep("gitea", forge.port)
    owner, repo = SANDBOX_REPO
    for login, admin in (("fleet", True), ("alice", False), (owner, False)):
        if not forge.has_user(login):
            forge.add_user(login, admin=admin)
    if not forge.has_repo(owner, repo):
        forge.add_repo(owner, repo)
        forge.add_collaborator(owner, repo, "fleet", "admin")
        forge.add_collaborator(owner, repo, "alice", "write")
        for title, body in SANDBOX_ISSUES:
            forge.add_issue(owner, repo, title, body)
    write_private(state_dir / "gitea-token", forge.token(FORGE_ADMIN))
    # The admin's password, made once and kept 0600 (never printed): Gitea mints agents'
    # tokens only with the admin's basic auth, and the seeded one was random and forgotten.
    password = state_dir / ADMIN_PASSWORD_FILE
    if not password.exists():
        write_new_private(password, secrets.token_urlsafe(24) + "\n")
    forge.set_password(FORGE_ADMIN, read_private(password))
    secret = state_dir / "webhook-secret"
    if not secret.exists():
        write_private(secret, secrets.token_urlsafe(24))
    return forge


async def _close_forge(forge: SandboxForge) -> None:
    await forge.stop()
    forge.close()


async def with_fleet(
    state_dir: Path,
    body: Callable[[LocalFleet, BotRunner], Awaitable[int]],
    extra_config: dict[str, Any] | None = None,
    nats_cluster: int = 0,
) -> int:
    async with LocalFleet.running(state_dir, extra_config, nats_cluster) as fleet:
        from fleetcore import log

        cfg = fleet.load()
        log.setup(cfg.log_level)
        runner = BotRunner(cfg)
        await runner.start()
        try:
            return await body(fleet, runner)
        finally:
            await runner.stop()


async def _serve(fleet: LocalFleet, runner: BotRunner) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    print(fleet.instructions(), flush=True)
    await stop.wait()
    print("stopping ...", flush=True)
    return 0


def run_local(main: Coroutine[Any, Any, int]) -> int:
    """Run `fleet up` or `fleet demo` to its end; a server that cannot start is one line."""
    try:
        return asyncio.run(main)
    except ServerStartError as exc:
        print(f"fleet: {exc}", file=sys.stderr)
        return 1


def up_main(state_dir: Path, nats_cluster: int = 0) -> int:
    return run_local(with_fleet(state_dir, _serve, nats_cluster=nats_cluster))
