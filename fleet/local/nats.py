"""nats-server from Debian's package, with JetStream, on a loopback port.

Without a port, nats-server picks a free one itself as it binds (`-p -1`) and writes it
to a ports file (`--ports_file_dir`): no probing for a port that someone else could take
before the server binds it. A restart keeps the port it got, so clients reconnect to the
same URL.

With a configuration (users and permissions from `fleetcore.bus.auth`, optionally TLS) the
server reads it from a private file; `reconfigure` rewrites that file and has the running
server reload it, which applies a removed user at once: its connections are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import time
from pathlib import Path

from fleetcore.bus.connect import load_nkey_seed
from fleetcore.identity.nkey import UserNKey
from fleetcore.proc import PIDFILE, ServerStartError, log_tail, spawn_server, stop_process
from fleetcore.secrets import SecretExistsError, make_private_dir, write_new_private, write_private

INSTALL_HINT = "sudo apt-get install -y nats-server"
RANDOM_PORT = -1  # nats-server's own "any free port"


class NatsMissing(ServerStartError):
    pass


def find_nats_server(explicit: str | None = None) -> str:
    if explicit is not None:
        if Path(explicit).is_file():
            return explicit
        raise NatsMissing(f"nats-server not found at {explicit}; install it with: {INSTALL_HINT}")
    for candidate in (shutil.which("nats-server"), "/usr/sbin/nats-server", "/usr/bin/nats-server"):
        if candidate and Path(candidate).is_file():
            return candidate
    raise NatsMissing(f"nats-server is not installed; install it with: {INSTALL_HINT}")


RELOADED = "Reloaded server configuration"
RELOAD_FAILED = "Failed to reload server configuration"


class ReloadError(ServerStartError):
    pass


def ensure_nkey_seed(path: Path) -> str:
    """A user NKey seed file (0600), created once; returns its public key.

    The seed is the user's password: it never leaves this file, and only the public key
    goes into the server's configuration.
    """
    if not path.exists():
        make_private_dir(path.parent)
        with contextlib.suppress(SecretExistsError):  # another process made it first
            write_new_private(path, UserNKey.generate().seed_secret() + "\n")
    return load_nkey_seed(path).public_key


def with_jetstream(config: str, data_dir: Path) -> str:
    """`config` with JetStream on, stored under `data_dir`.

    In the file, not as flags: a reload re-reads only the file, and JetStream enabled by
    `-js` alone is shut down by the first reload (nats-server 2.9 does so).
    """
    store = json.dumps({"store_dir": str(data_dir / "jetstream")})
    return f"{config}jetstream: {store}\n"


def _log_count(log_path: Path, line: str) -> int:
    try:
        return log_path.read_text(errors="replace").count(line)
    except FileNotFoundError:
        return 0


async def reload_server(
    pid: int, config_path: Path, config: str, log_path: Path, deadline_s: float = 10.0
) -> None:
    """Write `config` (0600) and have the nats-server `pid` reload it, without a restart.

    Returns once its log says it reloaded; raises if it refused the file (it then keeps
    running on the old one) or said nothing in time.
    """
    before = _log_count(log_path, RELOADED), _log_count(log_path, RELOAD_FAILED)
    write_private(config_path, config)
    os.kill(pid, signal.SIGHUP)  # what `nats-server --signal reload=<pid>` sends
    t0 = time.monotonic()
    while True:
        if _log_count(log_path, RELOAD_FAILED) > before[1]:
            raise ReloadError(f"nats-server refused the new configuration:\n{log_tail(log_path)}")
        if _log_count(log_path, RELOADED) > before[0]:
            return
        if time.monotonic() - t0 > deadline_s:
            raise ReloadError(f"nats-server did not reload:\n{log_tail(log_path)}")
        await asyncio.sleep(0.05)  # polling a server's log, not test synchronisation


class NatsServer:
    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        binary: str | None = None,
        config: str | None = None,
    ) -> None:
        self.data_dir = data_dir
        # Users, permissions, TLS: written to a private file the server reads (`-c`).
        self.config = config
        self.config_path = data_dir / "server.conf"
        # None until the first start when nats-server is to choose; then the port it chose.
        self.port = port
        self.binary = find_nats_server(binary)
        self.log_path = data_dir / "nats.log"
        self.ports_dir = data_dir / "ports"
        self._proc: asyncio.subprocess.Process | None = None
        self.start_seconds: float | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise ServerStartError("nats-server has no port yet: it picks one when it starts")
        return f"nats://127.0.0.1:{self.port}"

    async def start(self, deadline_s: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.ports_dir.mkdir(exist_ok=True, mode=0o700)
        # JetStream by flags, or in the config file: never both (nats-server refuses that).
        config_args = ["-js", "-sd", str(self.data_dir / "jetstream")]
        if self.config is not None:
            write_private(self.config_path, with_jetstream(self.config, self.data_dir))
            config_args = ["-c", str(self.config_path)]
        t0 = time.monotonic()
        proc = self._proc = await spawn_server(
            self.binary,
            *config_args,
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port if self.port is not None else RANDOM_PORT),
            "--ports_file_dir",
            str(self.ports_dir),
            "-l",
            str(self.log_path),
            # One server per JetStream store; dies with us (fleetcore/proc.py).
            pidfile=self.data_dir / PIDFILE,
            what="nats-server",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        while True:
            if proc.returncode is not None:
                raise ServerStartError(
                    f"nats-server exited with {proc.returncode}:\n{log_tail(self.log_path)}"
                )
            if time.monotonic() - t0 > deadline_s:
                await stop_process(proc)
                raise ServerStartError(f"nats-server not ready:\n{log_tail(self.log_path)}")
            port = self._listening_port(proc.pid)
            if port is not None and await _answers(port):
                self.port = port
                break
            await asyncio.sleep(0.05)  # polling a child process, not test synchronisation
        self.start_seconds = time.monotonic() - t0

    def _listening_port(self, pid: int) -> int | None:
        """The client port from the server's ports file, once it has written it.

        Named `<executable>_<pid>.ports`; the pid tells it from a killed server's leftover.
        """
        for path in self.ports_dir.glob(f"*_{pid}.ports"):
            try:
                urls = json.loads(path.read_text())["nats"]
                return int(urls[0].rsplit(":", 1)[1])
            except (OSError, ValueError, KeyError, IndexError):
                return None  # still being written
        return None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    async def reconfigure(self, config: str, deadline_s: float = 10.0) -> None:
        """Rewrite the configuration and reload it without a restart.

        Returns once the server's log says the reload happened; a configuration the
        server refuses raises, and the server keeps running on the old one.
        """
        proc = self._proc
        if proc is None or proc.returncode is not None:
            raise ReloadError("nats-server is not running")
        if self.config is None:
            raise ReloadError("nats-server was started without a configuration file")
        self.config = config
        full = with_jetstream(config, self.data_dir)
        await reload_server(proc.pid, self.config_path, full, self.log_path, deadline_s)

    async def stop(self) -> None:
        await stop_process(self._proc)
        self._proc = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()


async def _answers(port: int) -> bool:
    """The server greets a client with INFO: it is accepting connections."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1)
    except (OSError, TimeoutError):
        return False
    try:
        line = await asyncio.wait_for(reader.readline(), 2)
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
    return line.startswith(b"INFO")
