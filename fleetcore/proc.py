"""Shared process plumbing for the local servers: spawning, orphans, ports, logs, the lock.

A server we start must not outlive us. A `kill -9` of `fleet up` gives it no chance to stop
its children, so each server is started to die with it (`PR_SET_PDEATHSIG`, set by
util-linux's `setpriv` just before it execs the server: no `preexec_fn`, which may deadlock
a child forked from a process with threads). The signal fires when the *thread* that
forked the child exits; asyncio forks in the event loop's thread, so a server lives as
long as the loop that started it. For the moment between fork and `setpriv`'s prctl, and
for a machine without `setpriv`, each server's pid is recorded next to its data: the next
start stops a server still running on the same store before it starts another on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fleetcore.secrets import write_private

log = logging.getLogger("hermes.proc")

# A crash path only: an orderly stop has already sent SIGTERM and waited. SIGKILL cannot be
# ignored or stuck behind a hung shutdown; SQLite and JetStream's file store both survive
# a killed process (the page cache keeps what was written).
PDEATHSIG = "KILL"
# A server's pid record, in its data directory (see `record_pid`).
PIDFILE = "server.pid"


class ServerStartError(RuntimeError):
    """A local server did not come up; the message carries the tail of its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def stop_process(proc: asyncio.subprocess.Process | None, grace: float = 10.0) -> None:
    if proc is None or proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


# ---- servers that die with us ---------------------------------------------------------


def _pdeathsig_prefix() -> list[str]:
    setpriv = shutil.which("setpriv") if sys.platform == "linux" else None
    return [setpriv, f"--pdeathsig={PDEATHSIG}", "--"] if setpriv else []


def start_time(pid: int) -> str | None:
    """The kernel's start time of a live process (None: gone or a zombie).

    With the pid it names one process for good: a reused pid has another start time.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]  # field 22 of proc(5)


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip() or "?"


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def record_pid(pidfile: Path, pid: int) -> None:
    """Pid, start time and boot: together they name one process, across reboots too."""
    # Private like everything beside it in a state directory (fleetcore/secrets.py).
    record = {"pid": pid, "start": start_time(pid), "boot": _boot_id()}
    write_private(pidfile, json.dumps(record))


def recorded_process(pidfile: Path) -> int | None:
    """The pid in `pidfile` if that very process still runs."""
    try:
        saved: dict[str, Any] = json.loads(pidfile.read_text())
        pid = int(saved["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if saved.get("boot") != _boot_id():
        return None
    now = start_time(pid)
    return pid if now is not None and now == saved.get("start") else None


def _forget(pidfile: Path) -> None:
    pidfile.unlink(missing_ok=True)


async def stop_orphan(pidfile: Path, what: str, grace: float = 10.0) -> int | None:
    """Stop the server recorded in `pidfile` if it still runs; its pid, or None.

    It is not our child (its parent died), so this polls /proc for its end.
    """
    pid = recorded_process(pidfile)
    if pid is None:
        return None
    log.warning("orphan_stopping", extra={"fields": {"server": what, "pid": pid}})
    deadline = time.monotonic() + grace
    sig = signal.SIGTERM
    while recorded_process(pidfile) == pid:
        if time.monotonic() > deadline and sig != signal.SIGKILL:
            sig = signal.SIGKILL
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        await asyncio.sleep(0.05)  # polling a process that is not our child
    _forget(pidfile)
    return pid


async def spawn_server(
    program: str, *args: str, pidfile: Path, what: str, **kwargs: Any
) -> asyncio.subprocess.Process:
    """Start a long-running server that dies with this process (see the module docstring).

    A server that an earlier, killed run left on the same store (recorded in `pidfile`) is
    stopped first: two Synapses on one SQLite file, or two nats-servers on one JetStream
    store, corrupt each other quietly.
    """
    await stop_orphan(pidfile, what)
    proc = await asyncio.create_subprocess_exec(*_pdeathsig_prefix(), program, *args, **kwargs)
    record_pid(pidfile, proc.pid)
    return proc


# ---- ports ----------------------------------------------------------------------------


def _listeners() -> Iterator[tuple[int, str]]:
    """(port, socket inode) of every listening TCP socket this machine shows us."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9 and cols[3] == "0A":
                yield int(cols[1].rsplit(":", 1)[1], 16), cols[9]


def _listening_inodes(port: int) -> set[str]:
    return {inode for bound, inode in _listeners() if bound == port}


def can_see_ports() -> bool:
    return Path("/proc/net/tcp").exists()


def bound_port(pid: int) -> int | None:
    """The port `pid` listens on, once it does.

    A server told to bind port 0 gets a free one from the kernel as it binds, with no
    window for another process to take it; this is how we learn which.
    """
    sockets: set[str] = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                sockets.add(os.readlink(fd))
    return next((port for port, inode in _listeners() if f"socket:[{inode}]" in sockets), None)


def _holds(pid: int, sockets: set[str]) -> bool:
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) in sockets:
                    return True
    return False


def port_holder(port: int) -> str:
    """Who listens on `port`, in words: 'pid 123 (nats-server -p 4222)' or a hint."""
    sockets = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if sockets:
        for proc_dir in Path("/proc").iterdir():
            if proc_dir.name.isdigit() and _holds(int(proc_dir.name), sockets):
                pid = int(proc_dir.name)
                return f"pid {pid} ({command_line(pid)})"
    return "another process (one this user cannot see)"


def listens_on(pid: int, port: int) -> bool:
    """Whether `pid` is what listens on `port`.

    A server that answers on its URL may be another one that took the port while ours was
    still loading; ours then fails to bind, and must not be taken for ready meanwhile.
    Without /proc (not Linux) there is no telling: assumed.
    """
    if not can_see_ports():
        return True
    return _holds(pid, {f"socket:[{inode}]" for inode in _listening_inodes(port)})


def check_port_free(port: int, what: str, advice: str) -> None:
    """Fail with who holds `port`, instead of moving `what` to another port.

    Binds as the servers do (SO_REUSEADDR), so a port whose last connections linger in
    TIME_WAIT after a crash counts as free.
    """
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            pass
        else:
            return
    raise ServerStartError(f"port {port} for {what} is in use by {port_holder(port)}; {advice}")


# ---- one instance per state directory -------------------------------------------------


class StateLock:
    """An exclusive `flock` on a state directory, held until `release()` or our death.

    The kernel drops it when the process dies, however it dies, so a crash leaves no stale
    lock. The file is not inherited by the servers we start: an orphan must not hold it.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    @classmethod
    def acquire(cls, state_dir: Path, command: str = "fleet up") -> StateLock:
        path = state_dir / "fleet.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ServerStartError(
                f"another {command} (pid {holder}) is running on the state directory "
                f"{state_dir}; stop it first, or give this one another --state-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing drops the flock
            self._fd = -1
