"""`fleet up` after a crash: no orphans, one fleet per state directory, the same ports.

A `kill -9` of `fleet up` used to leave Synapse and nats-server running; the next run then
put a second Synapse on the same SQLite file and moved the ports, stranding running wolves.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from fleet.local.nats import NatsServer, find_nats_server
from fleet.local.synapse import SynapseServer
from fleet.local.up import LocalFleet
from fleetcore.bus.connect import connect
from fleetcore.config import load_config
from fleetcore.proc import (
    PIDFILE,
    ServerStartError,
    StateLock,
    free_port,
    listens_on,
    log_tail,
    record_pid,
    recorded_process,
    stop_orphan,
)

READY = "Ctrl-C stops everything"


async def _exited(pid: int, timeout: float) -> None:
    """Until `pid` has ended: its pidfd turns readable then (zombie or reaped)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(fd, done.set)
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def _children(pid: int) -> dict[int, str]:
    """Live children of `pid` from /proc, not from the pid records under test."""
    found: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        rest = text[text.rindex(")") + 2 :].split()
        if int(rest[1]) == pid and rest[0] not in ("Z", "X"):
            found[int(stat.parent.name)] = text[text.index("(") + 1 : text.rindex(")")]
    return found


async def _fleet_up(state: Path, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fleet.cli",
            "up",
            "--state-dir",
            str(state),
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
        )
    assert proc.stdout is not None
    out = proc.stdout

    async def until_up() -> None:
        while True:
            line = (await out.readline()).decode()
            assert line, "fleet up exited early:\n" + log_tail(log)
            if READY in line:
                return

    await asyncio.wait_for(until_up(), 180)
    return proc


async def test_fleet_up_killed_takes_its_servers_along_and_comes_back_on_the_same_ports(
    tmp_path: Path,
) -> None:
    state = tmp_path / "up"
    log = tmp_path / "up.log"
    # Not the defaults: other fleets on this machine may hold or race for 8787 and 3000.
    # nats-server and Synapse bind port 0 on this first run, and their picks are recorded.
    state.mkdir()
    (state / "ports.json").write_text(
        json.dumps({name: free_port() for name in ("webhook", "gitea")})
    )
    first = await _fleet_up(state, log)
    servers = _children(first.pid)
    assert sorted(servers.values()) == ["nats-server", "python"], servers
    ports = json.loads((state / "ports.json").read_text())
    assert set(ports) == {"synapse", "webhook", "gitea", "nats"}
    cfg = load_config(state / "config.yaml")
    assert cfg.bus is not None
    bus = cfg.bus.model_copy(update={"reconnect_wait_s": 0.2, "reconnect_max_wait_s": 1.0})
    reconnected = asyncio.Event()

    async def on_reconnected() -> None:
        reconnected.set()

    wolf = await connect(bus, "probe-wolf", on_reconnected=on_reconnected)
    try:
        # A second fleet on the same state directory is refused, naming the first.
        second = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fleet.cli",
            "up",
            "--state-dir",
            str(state),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(second.communicate(), 60)
        assert second.returncode == 1
        assert f"another fleet up (pid {first.pid}) is running" in err.decode()
        assert str(state.resolve()) in err.decode()
        assert _children(first.pid) == servers  # and it touched nothing

        first.kill()
        t0 = time.monotonic()
        await first.wait()
        for pid in servers:
            await _exited(pid, timeout=10)
        print(f"servers gone {time.monotonic() - t0:.3f}s after SIGKILL of fleet up")
        assert not reconnected.is_set()

        again = await _fleet_up(state, log)
        try:
            assert json.loads((state / "ports.json").read_text()) == ports
            # The wolf still holds the old URL; it is the same, so its reconnect lands.
            await asyncio.wait_for(reconnected.wait(), 30)
            await wolf.publish("probe.after-crash", b"x")
            await wolf.flush(timeout=5)
        finally:
            again.send_signal(signal.SIGINT)
            assert await asyncio.wait_for(again.wait(), 60) == 0
    finally:
        await wolf.close()


async def test_a_server_answering_on_our_port_is_ours_only_if_it_listens_there() -> None:
    """Synapse's readiness: another server that took the port while ours loaded is not ours."""
    other = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; sys.stdin.read()", stdin=asyncio.subprocess.PIPE
    )
    try:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            port = sock.getsockname()[1]
            assert listens_on(os.getpid(), port)
            assert not listens_on(other.pid, port)
    finally:
        assert other.stdin is not None
        other.stdin.close()
        await other.wait()


def test_a_second_lock_on_a_state_directory_names_the_holder(tmp_path: Path) -> None:
    held = StateLock.acquire(tmp_path)
    try:
        with pytest.raises(ServerStartError) as info:
            StateLock.acquire(tmp_path)
        assert f"(pid {os.getpid()}) is running on the state directory {tmp_path}" in str(
            info.value
        )
    finally:
        held.release()
    StateLock.acquire(tmp_path).release()  # released with its holder


async def test_a_server_left_on_the_store_is_stopped_before_another_starts(
    tmp_path: Path,
) -> None:
    """What a crash in the instant before PDEATHSIG was set (or no setpriv) leaves."""
    data = tmp_path / "nats"
    orphan = await asyncio.create_subprocess_exec(
        find_nats_server(),
        *("-a", "127.0.0.1", "-p", "-1", "-js", "-sd", str(data / "jetstream")),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    ended = os.pidfd_open(orphan.pid)
    try:
        data.mkdir()
        record_pid(data / PIDFILE, orphan.pid)
        server = NatsServer(data)
        await server.start()
        try:
            assert select.select([ended], [], [], 0)[0], "the orphan outlived the new start"
            now = recorded_process(data / PIDFILE)
            assert now is not None and now != orphan.pid
        finally:
            await server.stop()
    finally:
        os.close(ended)
        if orphan.returncode is None:
            orphan.kill()
        await orphan.wait()


async def test_a_pid_record_never_stops_an_unrelated_process(tmp_path: Path) -> None:
    """A recycled pid has another start time: the record no longer names it."""
    record = tmp_path / PIDFILE
    record_pid(record, os.getpid())
    saved = json.loads(record.read_text())
    record.write_text(json.dumps(saved | {"start": str(int(saved["start"]) - 1)}))
    assert await stop_orphan(record, "synapse") is None


async def test_synapse_on_a_taken_port_names_the_process_holding_it(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ServerStartError) as info:
            await SynapseServer(tmp_path / "synapse", port=port).start()
    assert f"port {port} for synapse is in use by pid {os.getpid()} (" in str(info.value)


async def test_a_kept_port_held_by_another_process_fails_naming_it(tmp_path: Path) -> None:
    state = tmp_path / "up"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        state.mkdir()
        (state / "ports.json").write_text(json.dumps({"synapse": port}))
        t0 = time.monotonic()
        with pytest.raises(ServerStartError) as info:
            async with LocalFleet.running(state):
                pass
    message = str(info.value)
    assert f"port {port} for synapse" in message and f"pid {os.getpid()} (" in message
    assert time.monotonic() - t0 < 5  # refused before any server started
    assert json.loads((state / "ports.json").read_text()) == {"synapse": port}


async def test_fleet_up_stops_a_server_left_on_its_store_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "up"
    orphan = await asyncio.create_subprocess_exec(
        find_nats_server(),
        *("-a", "127.0.0.1", "-p", "-1", "-js", "-sd", str(state / "nats" / "jetstream")),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    ended = os.pidfd_open(orphan.pid)
    try:
        record_pid(state / "nats" / PIDFILE, orphan.pid)
        with socket.socket() as holder:  # so that the run ends right after the orphans
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            (state / "ports.json").write_text(json.dumps({"synapse": holder.getsockname()[1]}))
            with pytest.raises(ServerStartError, match="for synapse is in use"):
                async with LocalFleet.running(state):
                    pass
        assert select.select([ended], [], [], 0)[0], "the orphan survived"
        err = capsys.readouterr().err
        assert f"stopped nats-server (pid {orphan.pid}), left running on {state / 'nats'}" in err
    finally:
        os.close(ended)
        if orphan.returncode is None:
            orphan.kill()
        await orphan.wait()
