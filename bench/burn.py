"""A burn of 500 issues by 4 wolves, and what the naive design (a message per result) costs.

Part A, the fleet's design: nats-server, the Gitea stand-in and a fake model server that
answers at once, the bot's BurnService (from `BurnRig`, writing into a recording room) and
N wolves. Each part runs in its own process, as deployed, so CPU is read per component
from /proc (utime + stime, over the burn only): the bot (this process), the wolves (one
process each), the stand-in Gitea + fake model (one process; Python stand-ins for Gitea
and a model API, not fleet code) and nats-server. Prints wall time from `rig.burn()` (what
`!burn` runs: list issues, queue tasks) to the burn's end, tasks/s, room messages and
edits, and CPU seconds per task. Bus and burn settings are the production defaults.

Part B, the naive design, on the same results: one m.notice per result, sent one after
another (unencrypted) to a room on a real Synapse with Synapse's default rate limits
(`rc_message` 0.2/s, burst 10), honouring `retry_after_ms`; prints the 429s and how long
delivering all of them took. At the defaults that is about (N - 10) x 5 s.

    .venv/bin/python bench/burn.py [--issues 500] [--wolves 4] [--concurrency 4]
                                   [--skip-naive] [--profile DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # fleettest

import httpx

from fleet.local.nats import NatsServer
from fleet.local.synapse import SynapseServer
from fleetcore.bus.config import BusConfig
from fleetcore.config.burn import BurnConfig
from fleettest.burnrig import OWNER, REPO, BurnRig, RoutingOnly, stop_process, wolf_process
from fleettest.gitea_standin import GiteaStandin
from fleettest.models_fake import FakeProvider, ok, triage_reply

TICK = os.sysconf("SC_CLK_TCK")
TARGET_RATE, TARGET_MESSAGES = 50.0, 5


def cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_busy_s() -> float:
    """CPU seconds all processes on the machine have used (all cores), from /proc/stat."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / TICK  # all but idle and iowait


def quiet_shutdown() -> None:
    """Closing the bus on purpose is not news: no `nats_disconnected` warnings at the end."""
    logging.getLogger("fleetcore.bus.connect").setLevel(logging.ERROR)


def _profiled(
    profile_dir: str | None, name: str, run: Callable[[], Coroutine[Any, Any, None]]
) -> None:
    if profile_dir is None:
        asyncio.run(run())
        return
    prof = cProfile.Profile()
    prof.enable()
    try:
        asyncio.run(run())
    finally:
        prof.disable()
        prof.dump_stats(str(Path(profile_dir) / f"{name}.prof"))


# -- child processes ---------------------------------------------------------------------


def servers_main(issues: int, conn: Connection, profile_dir: str | None) -> None:
    """The Gitea stand-in (seeded as BurnRig seeds it, schema validation off) and the model."""

    async def run() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        gitea = GiteaStandin(validator=RoutingOnly())
        await gitea.start()
        token = gitea.add_user("fleet", admin=True)
        gitea.add_repo(OWNER, REPO)
        gitea.add_collaborator(OWNER, REPO, "fleet", "admin")
        for n in range(1, issues + 1):
            gitea.add_issue(
                OWNER,
                REPO,
                f"Crash number {n} when saving a draft",
                f"Saving draft {n} throws a TypeError in the editor.",
            )
        async with FakeProvider("openai", ok(triage_reply)) as model:
            conn.send((gitea.url, token, model.base_url))
            await stop.wait()
        await gitea.stop()

    _profiled(profile_dir, "servers", run)


def wolf_main(
    name: str,
    concurrency: int,
    bus_json: str,
    gitea_url: str,
    token: str,
    model_url: str,
    profile_dir: str | None,
    nsec: str,
) -> None:
    """One wolf, wired as `BurnRig.start_wolf` wires it, in its own process."""
    bus = BusConfig.model_validate_json(bus_json)
    _profiled(
        profile_dir,
        f"wolf-{name}",
        lambda: wolf_process(
            name, "wolves", bus, gitea_url, token, model_url, nsec, concurrency, quiet_shutdown
        ),
    )


# -- part A ------------------------------------------------------------------------------


class _RemoteGitea:
    def __init__(self, url: str) -> None:
        self.url = url


class SplitRig(BurnRig):
    """BurnRig's bot and recording room here; Gitea, the model and wolves in other processes."""

    def __init__(
        self, nats_url: str, state_dir: Path, gitea_url: str, token: str, **kw: Any
    ) -> None:
        super().__init__(nats_url, state_dir, **kw)
        self.gitea = _RemoteGitea(gitea_url)  # type: ignore[assignment]
        self.token = token

    async def __aenter__(self) -> SplitRig:
        await self.start_bot()
        return self

    async def __aexit__(self, *exc: object) -> None:
        quiet_shutdown()
        await self.stop_bot()


async def part_a(args: argparse.Namespace, tmp: Path) -> tuple[float, int, list[str]]:
    """Returns (tasks/s, room messages, one text per result for part B)."""
    ctx = mp.get_context("spawn")
    nats = NatsServer(tmp / "nats")
    await nats.start()
    children: list[mp.process.BaseProcess] = []
    try:
        here, there = ctx.Pipe()
        servers = ctx.Process(
            target=servers_main, args=(args.issues, there, args.profile), name="servers"
        )
        servers.start()
        children.append(servers)
        if not await asyncio.to_thread(here.poll, 120):
            raise RuntimeError("the Gitea stand-in / fake model process did not start")
        gitea_url, token, model_url = here.recv()

        # Production timings: BusConfig() and BurnConfig() defaults (edit every 2 s,
        # digest every 30 s), not the tests' fast ones.
        bus = BusConfig(servers=[nats.url])
        burn_cfg = BurnConfig(max_limit=max(1000, args.issues))
        async with SplitRig(
            nats.url,
            tmp / "state",
            gitea_url,
            token,
            issues=args.issues,
            bus=bus,
            burn=burn_cfg,
            validate=False,
        ) as rig:
            assert rig.service is not None and rig.service.registry is not None
            names = [f"w{i + 1}" for i in range(args.wolves)]
            for name in names:
                wolf = ctx.Process(
                    target=wolf_main,
                    name=f"wolf-{name}",
                    args=(
                        name,
                        args.concurrency,
                        bus.model_dump_json(),
                        gitea_url,
                        token,
                        model_url,
                        args.profile,
                        rig.register(name).nsec_secret(),
                    ),
                )
                wolf.start()
                children.append(wolf)
            wolves = children[1:]
            deadline = time.monotonic() + 120
            while len(await rig.service.registry.alive_names()) < args.wolves:
                if time.monotonic() > deadline:
                    raise RuntimeError("wolves did not come up")
                await asyncio.sleep(0.1)  # polling other processes' heartbeats
            await asyncio.sleep(0.5)  # let each wolf's pull subscription settle

            nats_pid = nats._proc.pid if nats._proc is not None else None
            pids = {"servers": [servers.pid], "wolves": [w.pid for w in wolves], "nats": [nats_pid]}
            before = {k: sum(cpu_s(p) for p in v if p) for k, v in pids.items()}
            bot_before = time.process_time()
            machine_before = machine_busy_s()
            prof = cProfile.Profile() if args.profile else None
            if prof is not None:
                prof.enable()
            t0 = time.perf_counter()
            burn_id = await rig.burn()
            await rig.wait_finished(burn_id, timeout=max(300.0, args.issues))
            wall = time.perf_counter() - t0
            if prof is not None:
                prof.disable()
                prof.dump_stats(str(Path(args.profile) / "bot.prof"))
            bot_cpu = time.process_time() - bot_before
            machine = machine_busy_s() - machine_before
            used = {k: sum(cpu_s(p) for p in v if p) - before[k] for k, v in pids.items()}

            progress = rig.service.store.progress(burn_id)
            assert progress is not None
            results = sorted(progress.results.values(), key=lambda r: r.issue_number)
            texts = [
                f"#{r.issue_number} {r.outcome}: {r.summary} {r.url or ''}".rstrip()
                for r in results
            ]
            counts = progress.counts()
            for child in wolves:
                stop_process(child)

        n = args.issues
        messages = len(rig.room.messages)
        edits = sum(len(v) for v in rig.room.edits.values())
        rate = n / wall
        total_cpu = bot_cpu + sum(used.values())
        others = max(0.0, machine - total_cpu)
        print(
            f"Part A, the fleet: {n} issues, {args.wolves} wolves x concurrency "
            f"{args.concurrency}, {os.cpu_count()} cores"
        )
        print(
            "  (Gitea stand-in with its swagger validation off: test-only overhead; "
            "fake model answers at once; room = BurnRig's recording room)"
        )
        print(f"  outcomes            {counts}")
        print(f"  wall time           {wall:7.2f} s  (burn queued -> burn finished)")
        print(f"  tasks per second    {rate:7.1f}")
        print(f"  room messages       {messages:7d}  (+ {edits} edits of the progress message)")
        print(f"  CPU s/task bot      {bot_cpu / n * 1000:7.2f} ms  ({bot_cpu:.2f} s)")
        print(
            f"  CPU s/task wolves   {used['wolves'] / n * 1000:7.2f} ms  "
            f"({used['wolves']:.2f} s over {args.wolves} processes)"
        )
        print(
            f"  CPU s/task stand-in {used['servers'] / n * 1000:7.2f} ms  "
            f"({used['servers']:.2f} s; Gitea stand-in + fake model, not fleet code)"
        )
        print(f"  CPU s/task nats     {used['nats'] / n * 1000:7.2f} ms  ({used['nats']:.2f} s)")
        print(
            f"  CPU total           {total_cpu:7.2f} s of {wall * (os.cpu_count() or 1):.2f} "
            f"core-seconds available"
        )
        print(
            f"  CPU other processes {others:7.2f} s  (the rest of the machine during the burn; "
            "above ~0.5 s the figures are not clean)"
        )
        return rate, messages, texts
    finally:
        for child in children:
            stop_process(child)
        await nats.stop()


# -- part B ------------------------------------------------------------------------------


async def part_b(texts: list[str], tmp: Path) -> None:
    synapse = SynapseServer(tmp / "synapse", default_rate_limits=True)
    await synapse.start()
    try:
        bot = await synapse.register("naivebot")  # not an admin
        async with httpx.AsyncClient(base_url=synapse.url, timeout=30) as http:
            login = await http.post(
                "/_matrix/client/v3/login",
                json={
                    "type": "m.login.password",
                    "identifier": {"type": "m.id.user", "user": bot.localpart},
                    "password": bot.password,
                },
            )
            login.raise_for_status()
            http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
            created = await http.post(
                "/_matrix/client/v3/createRoom",
                json={"preset": "private_chat", "name": "naive burn"},
            )
            created.raise_for_status()
            room = quote(created.json()["room_id"])
            limited = 0
            waited = 0.0
            t0 = time.perf_counter()
            for text in texts:
                txn = uuid.uuid4().hex
                while True:
                    resp = await http.put(
                        f"/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}",
                        json={"msgtype": "m.notice", "body": text},
                    )
                    if resp.status_code != 429:
                        resp.raise_for_status()
                        break
                    limited += 1
                    retry_ms = resp.json().get("retry_after_ms")
                    if retry_ms is None:
                        retry_ms = 1000 * float(resp.headers.get("Retry-After", "1"))
                    waited += retry_ms / 1000
                    await asyncio.sleep(retry_ms / 1000)
            elapsed = time.perf_counter() - t0
        print(
            "Part B, the naive design: one m.notice per result (unencrypted), sent in "
            "sequence to Synapse with its default rate limits (rc_message 0.2/s, burst 10)"
        )
        print(f"  room messages       {len(texts):7d}")
        print(f"  429s (M_LIMIT_EXCEEDED) {limited:3d}  ({waited:.0f} s spent waiting on them)")
        print(f"  time to deliver all {elapsed:7.1f} s  ({len(texts) / elapsed:.2f} results/s)")
    finally:
        await synapse.stop()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        rate, messages, texts = await part_a(args, tmp)
        if not args.skip_naive:
            await part_b(texts, tmp)
            print(f"  fleet: {messages} room messages for the same {len(texts)} results")
        verdict = "PASS" if rate >= TARGET_RATE and messages <= TARGET_MESSAGES else "FAIL"
        print(
            f"target: >= {TARGET_RATE:.0f} tasks/s and <= {TARGET_MESSAGES} room messages: "
            f"{verdict}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--issues", type=int, default=500)
    parser.add_argument("--wolves", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4, help="tasks at once per wolf")
    parser.add_argument("--skip-naive", action="store_true", help="part A only")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="write cProfile stats of part A per process into DIR (slows part A)",
    )
    args = parser.parse_args()
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    asyncio.run(main(args))
