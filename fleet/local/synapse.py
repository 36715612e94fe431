"""Synapse on 127.0.0.1: the local stand-in for Conduit (tests, `fleet up`, benchmarks).

SQLite, registration only through the shared secret, federation off, and rate limits set
for a local fleet: a bot and a handful of scripted clients on one machine would otherwise
spend the tests waiting on 429s.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from fleetcore.proc import (
    PIDFILE,
    ServerStartError,
    bound_port,
    can_see_ports,
    check_port_free,
    free_port,
    listens_on,
    log_tail,
    port_holder,
    spawn_server,
    stop_process,
)
from fleetcore.secrets import tighten_tree, write_private

_GENEROUS = {"per_second": 1000, "burst_count": 1000}


@dataclass(frozen=True)
class Account:
    user_id: str
    password: str
    localpart: str


def homeserver_config(
    data_dir: Path,
    port: int,
    server_name: str,
    shared_secret: str,
    *,
    default_rate_limits: bool = False,
    rc_message: dict[str, float] | None = None,
) -> dict[str, Any]:
    """`default_rate_limits=True` leaves every `rc_*` out, so Synapse's own defaults apply
    (`rc_message`: 0.2/s, burst 10), as on a homeserver nobody tuned for a bot."""
    cfg: dict[str, Any] = {
        "server_name": server_name,
        "pid_file": str(data_dir / "homeserver.pid"),
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(data_dir / "homeserver.db")}},
        "log_config": str(data_dir / "log.config"),
        "media_store_path": str(data_dir / "media"),
        "signing_key_path": str(data_dir / "signing.key"),
        "registration_shared_secret": shared_secret,
        "enable_registration": False,
        "report_stats": False,
        "macaroon_secret_key": shared_secret + "-macaroon",
        "form_secret": shared_secret + "-form",
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "federation_domain_whitelist": [],
        "presence": {"enabled": False},
        "url_preview_enabled": False,
        "enable_metrics": False,
    }
    if default_rate_limits:
        return cfg
    return cfg | {
        "rc_message": rc_message or _GENEROUS,
        "rc_registration": _GENEROUS,
        "rc_login": {"address": _GENEROUS, "account": _GENEROUS, "failed_attempts": _GENEROUS},
        "rc_admin_redaction": _GENEROUS,
        "rc_joins": {"local": _GENEROUS, "remote": _GENEROUS},
        "rc_joins_per_room": _GENEROUS,
        "rc_invites": {"per_room": _GENEROUS, "per_user": _GENEROUS, "per_issuer": _GENEROUS},
        "rc_key_requests": _GENEROUS,
        "rc_3pid_validation": _GENEROUS,
        "rc_room_creation": _GENEROUS,
        "rc_delayed_event_mgmt": _GENEROUS,
    }


_LOG_CONFIG = """version: 1
formatters:
  precise: {format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(message)s'}
handlers:
  file: {class: logging.FileHandler, formatter: precise, filename: LOGFILE}
root: {level: WARNING, handlers: [file]}
disable_existing_loggers: false
"""


class SynapseServer:
    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        server_name: str = "localhost",
        *,
        default_rate_limits: bool = False,
        rc_message: dict[str, float] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.default_rate_limits = default_rate_limits
        # A tight message limit of our own, to see the bot meet 429s (tests).
        self.rc_message = rc_message
        self.server_name = server_name
        # None: Synapse binds port 0 (the kernel picks, no race) and start() reads which;
        # a restart keeps it.
        self.port = port
        self._proc: asyncio.subprocess.Process | None = None
        self.log_path = data_dir / "homeserver.log"
        # Who runs on this database: a run killed with -9 may have left its Synapse behind.
        self.pidfile = data_dir / PIDFILE
        self.start_seconds: float | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise ServerStartError("synapse has no port yet: it binds one when it starts")
        return f"http://127.0.0.1:{self.port}"

    def _prepare(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Synapse's database holds the bot's access token: an existing state directory that
        # an older run left readable by others is made private again before Synapse starts,
        # and Synapse itself runs with umask 077 so what it creates is private too.
        tighten_tree(self.data_dir)
        secret_path = self.data_dir / "registration_shared_secret"
        if not secret_path.exists():
            write_private(secret_path, secrets.token_urlsafe(32))
        self._secret = secret_path.read_text().strip()
        if self.port is None and not can_see_ports():
            self.port = free_port()  # no /proc to learn the kernel's pick from
        cfg = homeserver_config(
            self.data_dir,
            self.port if self.port is not None else 0,
            self.server_name,
            self._secret,
            default_rate_limits=self.default_rate_limits,
            rc_message=self.rc_message,
        )
        write_private(
            self.data_dir / "log.config", _LOG_CONFIG.replace("LOGFILE", str(self.log_path))
        )
        path = self.data_dir / "homeserver.yaml"
        write_private(path, yaml.safe_dump(cfg, sort_keys=False))
        return path

    async def start(self, deadline_s: float = 90.0) -> None:
        config_path = self._prepare()
        # Before the seconds Synapse takes to load: its bind error would come last.
        if self.port is not None:
            check_port_free(self.port, "synapse", "stop that, or give Synapse another port")
        t0 = time.monotonic()
        if not (self.data_dir / "signing.key").exists():
            gen = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "synapse.app.homeserver",
                "-c",
                str(config_path),
                "--generate-keys",
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                umask=0o077,
            )
            _, err = await gen.communicate()
            if gen.returncode != 0:
                raise ServerStartError(f"synapse key generation failed:\n{err.decode()[-2000:]}")
        stdout_fd = os.open(
            self.data_dir / "stdout.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )
        with open(stdout_fd, "ab") as out:  # noqa: ASYNC230 - the child writes it
            self._proc = await spawn_server(
                sys.executable,
                "-m",
                "synapse.app.homeserver",
                "-c",
                str(config_path),
                # One Synapse per database: a second one on the same SQLite file answers
                # until two writers collide (a 500 on a UNIQUE constraint at login).
                pidfile=self.pidfile,
                what="synapse",
                stdout=out,
                stderr=out,
                env={**os.environ, "SYNAPSE_CACHE_FACTOR": "0.5"},
                umask=0o077,
            )
        async with httpx.AsyncClient(timeout=2) as http:
            while True:
                if self._proc.returncode is not None:
                    tail = log_tail(self.data_dir / "stdout.log") + "\n" + log_tail(self.log_path)
                    held = ""
                    if "Address already in use" in tail and self.port is not None:
                        held = f" (port {self.port} is in use by {port_holder(self.port)})"
                    raise ServerStartError(
                        f"synapse exited with {self._proc.returncode}{held}:\n" + tail
                    )
                if time.monotonic() - t0 > deadline_s:
                    await stop_process(self._proc)
                    raise ServerStartError(
                        f"synapse did not answer within {deadline_s:.0f}s:\n"
                        + log_tail(self.log_path)
                    )
                if self.port is None:
                    self.port = bound_port(self._proc.pid)
                if self.port is not None:
                    try:
                        resp = await http.get(f"{self.url}/_matrix/client/versions")
                        if resp.status_code == 200 and listens_on(self._proc.pid, self.port):
                            break
                    except httpx.HTTPError:
                        pass
                await asyncio.sleep(0.1)  # polling a child process, not test synchronisation
        self.start_seconds = time.monotonic() - t0

    async def stop(self) -> None:
        await stop_process(self._proc)
        self._proc = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def register(
        self, localpart: str, password: str | None = None, admin: bool = False
    ) -> Account:
        """Shared-secret registration (Synapse's admin API); an existing user is returned."""
        password = password or secrets.token_urlsafe(18)
        user_id = f"@{localpart}:{self.server_name}"
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            nonce = (await http.get("/_synapse/admin/v1/register")).json()["nonce"]
            mac = hmac.new(self._secret.encode(), digestmod=hashlib.sha1)
            mac.update(
                b"\x00".join(
                    [
                        nonce.encode(),
                        localpart.encode(),
                        password.encode(),
                        b"admin" if admin else b"notadmin",
                    ]
                )
            )
            resp = await http.post(
                "/_synapse/admin/v1/register",
                json={
                    "nonce": nonce,
                    "username": localpart,
                    "password": password,
                    "admin": admin,
                    "mac": mac.hexdigest(),
                },
            )
            if resp.status_code == 400 and resp.json().get("errcode") == "M_USER_IN_USE":
                raise ServerStartError(f"{user_id} already exists; pass its password to reuse it")
            resp.raise_for_status()
        return Account(user_id, password, localpart)
