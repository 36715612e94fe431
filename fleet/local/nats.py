"""nats-server from Debian's package, with JetStream, on a loopback port."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

from fleetcore.proc import ServerStartError, free_port, log_tail, stop_process

INSTALL_HINT = "sudo apt-get install -y nats-server"


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


class NatsServer:
    def __init__(self, data_dir: Path, port: int | None = None, binary: str | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.binary = find_nats_server(binary)
        self.log_path = data_dir / "nats.log"
        self._proc: asyncio.subprocess.Process | None = None
        self.start_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def start(self, deadline_s: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        t0 = time.monotonic()
        self._proc = await asyncio.create_subprocess_exec(
            self.binary,
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-js",
            "-sd",
            str(self.data_dir / "jetstream"),
            "-l",
            str(self.log_path),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        while True:
            if self._proc.returncode is not None:
                raise ServerStartError(
                    f"nats-server exited with {self._proc.returncode}:\n{log_tail(self.log_path)}"
                )
            if time.monotonic() - t0 > deadline_s:
                await stop_process(self._proc)
                raise ServerStartError(f"nats-server not ready:\n{log_tail(self.log_path)}")
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.port), 1
                )
                line = await asyncio.wait_for(reader.readline(), 2)
                writer.close()
                if line.startswith(b"INFO"):
                    break
            except (OSError, TimeoutError):
                await asyncio.sleep(0.05)  # polling a child process, not test synchronisation
        self.start_seconds = time.monotonic() - t0

    async def stop(self) -> None:
        await stop_process(self._proc)
        self._proc = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()
