"""`fleet up` and `fleet demo`: the whole fleet on this machine, on embedded defaults.

Everything lives under one state directory (default `./.fleet/`) and is reused by the next
run: the homeserver's database, the accounts (passwords generated once, stored 0600), the
bot's device and keys, and the sandbox forge's SQLite file (its issues, comments, labels and
hooks). The ports are kept in `ports.json`. Ctrl-C stops every process this command started.
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
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import yaml

from fleet.local.botrunner import BotRunner
from fleet.local.nats import NatsServer
from fleet.local.opsroom import ensure_operators_room
from fleet.local.synapse import Account, SynapseServer
from fleet.sandbox.forge import DEFAULT_PORT as FORGE_PORT
from fleet.sandbox.forge import SandboxForge
from fleetcore.config import FleetConfig, load_config
from fleetcore.proc import ServerStartError, free_port
from fleetcore.secrets import write_private
from fleetcore.soul import Soul

BOT = "hermes"
OPERATOR = "operator"
SANDBOX_REPO = ("operator", "sandbox")
SANDBOX_ISSUES = (
    ("Editor loses the draft on save", "Type a paragraph, press **Save**, reload: it is gone."),
    ("Login form accepts an empty password", "The form submits and shows a blank page."),
    ("Dark mode: code blocks are unreadable", "Grey on grey in `pre` blocks."),
)


def _port_or_free(preferred: int) -> int:
    with socket.socket() as s:
        # As the servers bind: a port whose last connections linger in TIME_WAIT is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


class LocalFleet:
    """Starts the servers, makes the accounts and the config; stops all on exit."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir.resolve()
        self.ports_path = self.state_dir / "ports.json"
        self.accounts_path = self.state_dir / "accounts.json"
        self.config_path = self.state_dir / "config.yaml"
        # Your additions to the generated config (model providers, projects...).
        self.overlay_path = self.state_dir / "extra.yaml"
        self.synapse: SynapseServer | None = None
        self.nats: NatsServer | None = None
        self.forge: SandboxForge | None = None
        self.forge_users: dict[str, str] = {}
        self.webhook_port = 0
        self.accounts: dict[str, Account] = {}
        self.new_accounts = False
        # Extra config (the demo adds its fake model provider).
        self.extra_config: dict[str, Any] = {}
        # The private room for crisis alerts (fleet/local/opsroom.py).
        self.operators_room: str | None = None

    def _ports(self) -> dict[str, int]:
        """The saved ports, or the defaults; one that is taken is replaced by a free one,
        and saved, so the next run uses the same (the forge's hooks point at the webhook)."""
        saved: dict[str, int] = {}
        if self.ports_path.exists():
            saved = json.loads(self.ports_path.read_text())
        ports = {
            "synapse": _port_or_free(saved.get("synapse", 8008)),
            "nats": _port_or_free(saved.get("nats", 4222)),
            "webhook": _port_or_free(saved.get("webhook", 8787)),
            # The forge binds this itself and falls back to a free port if it is taken.
            "gitea": saved.get("gitea", FORGE_PORT),
        }
        if ports != saved:
            write_private(self.ports_path, json.dumps(ports))
        return ports

    def _keep_port(self, name: str, port: int) -> None:
        saved: dict[str, int] = json.loads(self.ports_path.read_text())
        if saved.get(name) != port:
            saved[name] = port
            write_private(self.ports_path, json.dumps(saved))

    async def __aenter__(self) -> LocalFleet:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        ports = self._ports()
        self.nats = NatsServer(self.state_dir / "nats", port=ports["nats"])
        self.synapse = SynapseServer(self.state_dir / "synapse", port=ports["synapse"])
        try:
            await self.nats.start()
            await self.synapse.start()
            await self._accounts()
            op = self.accounts["operator"]
            self.operators_room = await ensure_operators_room(
                self.synapse.url,
                op.user_id,
                op.password,
                self.accounts["bot"].user_id,
                self.state_dir,
            )
            await self._sandbox_forge(ports["gitea"])
            self.webhook_port = ports["webhook"]
            self._write_config()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.forge is not None:
            await self.forge.stop()
            self.forge.close()
        if self.synapse is not None:
            await self.synapse.stop()
        if self.nats is not None:
            await self.nats.stop()

    async def _accounts(self) -> None:
        assert self.synapse is not None
        if self.accounts_path.exists():
            saved = json.loads(self.accounts_path.read_text())
            self.accounts = {k: Account(**v) for k, v in saved.items()}
            return
        for role, localpart in (("bot", BOT), ("operator", OPERATOR)):
            self.accounts[role] = await self.synapse.register(
                localpart, password=secrets.token_urlsafe(18)
            )
        write_private(
            self.accounts_path,
            json.dumps({k: v.__dict__ for k, v in self.accounts.items()}, indent=1),
        )
        write_private(self.state_dir / "bot-password", self.accounts["bot"].password)
        self.new_accounts = True

    async def _sandbox_forge(self, port: int) -> None:
        """The sandbox Gitea (fleet/sandbox/forge.py), so forge commands and burns work at once.

        It keeps its data in `gitea/forge.db` under the state directory and is seeded once:
        a `fleet` admin (the bot's token), `alice` (a collaborator) and a repo with issues.
        Point `gitea:` at a real Gitea for work that must last.
        """
        self.forge = SandboxForge(db_path=self.state_dir / "gitea" / "forge.db", port=port)
        await self.forge.start()
        self._keep_port("gitea", self.forge.port)
        owner, repo = SANDBOX_REPO
        for login, admin in (("fleet", True), ("alice", False), (owner, False)):
            if not self.forge.has_user(login):
                self.forge.add_user(login, admin=admin)
        if not self.forge.has_repo(owner, repo):
            self.forge.add_repo(owner, repo)
            self.forge.add_collaborator(owner, repo, "fleet", "admin")
            self.forge.add_collaborator(owner, repo, "alice", "write")
            for title, body in SANDBOX_ISSUES:
                self.forge.add_issue(owner, repo, title, body)
        self.forge_users["alice"] = self.forge.token("alice")
        write_private(self.state_dir / "gitea-token", self.forge.token("fleet"))
        secret = self.state_dir / "webhook-secret"
        if not secret.exists():
            write_private(secret, secrets.token_urlsafe(24))

    def _soul_path(self) -> Path:
        """The packaged SOUL.md, written to the state directory the first time: edit it
        there (or set `soul:` in extra.yaml); a later release never overwrites it."""
        path = self.state_dir / "SOUL.md"
        if not path.exists():
            path.write_text(Soul.packaged().text, encoding="utf-8")
        return path

    def render_config(self) -> dict[str, Any]:
        assert self.synapse is not None and self.nats is not None and self.forge is not None
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
                "webhook": {
                    "port": self.webhook_port,
                    "secret": {"file": str(self.state_dir / "webhook-secret")},
                    "public_url": hook_url,
                    "batch_window_s": 1.0,
                },
            },
            "bus": {"servers": [self.nats.url]},
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
        write_private(self.config_path, yaml.safe_dump(self.render_config(), sort_keys=False))

    def load(self) -> FleetConfig:
        return load_config(self.config_path)

    def instructions(self) -> str:
        assert self.synapse is not None
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
            + (self.forge.url if self.forge else "-"),
            f"      try: !project add sandbox {'/'.join(SANDBOX_REPO)}",
            f"  NATS: {self.nats.url if self.nats else '-'}. Wolves need models: put `model:` "
            f"and `fallback_providers:` in {self.overlay_path},",
            f"      restart, then: fleet wolf --config {self.config_path} --name wolf-1",
            f"  State: {self.state_dir}    Ctrl-C stops everything.",
            "",
        ]
        return "\n".join(lines)


async def with_fleet(
    state_dir: Path,
    body: Callable[[LocalFleet, BotRunner], Awaitable[int]],
    extra_config: dict[str, Any] | None = None,
) -> int:
    fleet = LocalFleet(state_dir)
    fleet.extra_config = extra_config or {}
    async with fleet:
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


def up_main(state_dir: Path) -> int:
    return run_local(with_fleet(state_dir, _serve))
