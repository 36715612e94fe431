"""A burn on a loopback JetStream cluster, and what killing its tasks stream's leader costs.

Runs `fleettest.clusterburn.cluster_burn` (the burn tests/burn/test_burn_cluster.py checks):
a cluster of N nats-servers holding every stream on every node; in this process the burn
rig's Gitea stand-in (schema checks off), fake model and the bot's BurnService writing
into a recording room; W wolves, each in a process of its own as deployed (`--in-process`:
in this one, as the test runs them). Once half of the issues are reported the node leading
the tasks stream is killed with SIGKILL.

Prints: tasks/s over the whole burn and in the steady state before the kill; whether every
issue got exactly one triage comment, one result in the results stream and one report in
the room's digests; and the time to recover from the kill (definitions printed with the
figures). The load average goes with them: on a shared machine the figures move with it.

    .venv/bin/python bench/cluster.py [--issues 1000] [--wolves 8] [--nodes 3]
                                      [--concurrency 2] [--kill-at 0.5] [--no-kill]
                                      [--in-process]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # fleettest

from burn import cpu_s, machine_busy_s

from fleet.local.cluster import NatsCluster
from fleet.local.nats import find_nats_server
from fleetcore.bus.subjects import tier_consumer
from fleettest.burnrig import OWNER, REPO
from fleettest.clusterburn import (
    ASK_EVERY_S,
    ASK_TIMEOUT_S,
    ClusterBurn,
    cluster_burn,
    quiet_logs,
)

PROGRESS_EVERY_S = 5.0


def nats_version() -> str:
    out = subprocess.run([find_nats_server(), "--version"], capture_output=True, text=True)
    return out.stdout.strip() or "nats-server ?"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min; {os.cpu_count()} cores)"


def stamp(t0: float) -> Callable[[str], None]:
    def say(text: str) -> None:
        print(f"  [{time.monotonic() - t0:6.1f}s] {text}", flush=True)

    return say


async def progress(run: ClusterBurn, say: Callable[[str], None], stop: asyncio.Event) -> None:
    """A line every few seconds while the burn runs: reported so far and the recent rate."""
    last_n, last_t = 0, time.monotonic()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PROGRESS_EVERY_S)  # reporting, not sync
        n, t = run.reported(), time.monotonic()
        if n and not stop.is_set():
            rate = (n - last_n) / (t - last_t)
            say(f"{n}/{run.issues} reported, {rate:.1f}/s lately; load {load()}")
        last_n, last_t = n, t


class Cpu:
    """CPU seconds over the burn: this process (the bot, the Gitea stand-in, the fake
    model; and the wolves if in-process), the wolf processes, the nats-servers (a killed
    node's from its rusage once reaped) and the whole machine, from /proc."""

    def __init__(self, run: ClusterBurn) -> None:
        self.nodes = {pid: cpu_s(pid) for pid in node_pids(run)}
        self.wolves = {pid: cpu_s(pid) for pid in wolf_pids(run)}
        self.reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.here = time.process_time()
        self.machine = machine_busy_s()

    def used(self, run: ClusterBurn) -> dict[str, float]:
        here = time.process_time() - self.here
        wolves = sum(cpu_s(pid) - cpu for pid, cpu in self.wolves.items())
        live = node_pids(run)
        nats = sum(cpu_s(pid) - self.nodes[pid] for pid in live if pid in self.nodes)
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        nats += reaped.ru_utime + reaped.ru_stime - self.reaped.ru_utime - self.reaped.ru_stime
        nats -= sum(cpu for pid, cpu in self.nodes.items() if pid not in live)
        others = machine_busy_s() - self.machine - here - wolves - nats
        return {"here": here, "wolves": wolves, "nats": nats, "others": others}


def wolf_pids(run: ClusterBurn) -> list[int]:
    return [proc.pid for proc in run.processes if proc.pid is not None]


def node_pids(run: ClusterBurn) -> list[int]:
    server = run.server
    nodes = server.nodes if isinstance(server, NatsCluster) else [server]
    return [node.pid for node in nodes if node.pid is not None]


def progress_counts(run: ClusterBurn) -> dict[str, int]:
    service = run.rig.service
    progress = service.store.progress(run.burn_id) if service is not None else None
    return progress.counts() if progress is not None else {}


def report(
    run: ClusterBurn,
    args: argparse.Namespace,
    load_before: str,
    cpu: dict[str, float],
    version: str,
) -> list[str]:
    wall = run.finished - run.started
    kill = run.kill
    lines = [
        "",
        f"bench/cluster.py: {run.issues} issues, {run.wolves} wolves x concurrency "
        f"{args.concurrency}, {run.nodes} nats-server nodes ({version}), "
        f"stream replicas {run.replicas}",
        "  (the bot, the Gitea stand-in without its schema checks and the fake model in one "
        "Python process; "
        + ("the wolves in it too" if args.in_process else "each wolf in a process of its own")
        + "; each node its own nats-server)",
        f"  load average        before {load_before}",
        f"                      after  {load()}",
        f"  wall time           {wall:7.2f} s  (rig.burn() queueing the tasks -> the bot "
        "marks the burn finished)",
        f"  tasks/s overall     {run.issues / wall:7.1f}",
    ]
    cores = wall * (os.cpu_count() or 1)
    per = {k: f"{v:7.1f} s  ({v / run.issues * 1000:.1f} ms/task" for k, v in cpu.items()}
    lines += [
        f"  CPU this process    {per['here']}: bot, Gitea stand-in, fake model"
        + (", wolves)" if args.in_process else ")"),
        f"  CPU wolf processes  {per['wolves']}; {len(run.processes)} processes)",
        f"  CPU nats-servers    {per['nats']})",
        f"  CPU other processes {cpu['others']:7.1f} s  (the rest of the machine; {cores:.0f} "
        "core-seconds in all)",
    ]
    end_t, end_n, until = run.finished, run.issues, "the burn's end"
    if kill is not None:
        end_t, end_n, until = kill.at, kill.reported, "the kill"
    steady = (end_n - run.tenth) / (end_t - run.tenth_at) if end_t > run.tenth_at else 0.0
    lines.append(
        f"  tasks/s steady      {steady:7.1f}  (results the bot recorded between {run.tenth} "
        f"reported, at {run.tenth_at - run.started:.1f}s, and {until}, at "
        f"{end_t - run.started:.1f}s)"
    )
    if kill is not None:
        lines += [
            f"  leader kill         {kill.leader} (SIGKILL) at {kill.at - run.started:.1f}s, "
            f"{kill.reported} reported, {kill.outstanding} tasks not yet acked "
            f"({kill.queued} in the stream)",
            f"                      (at the kill the wolves' consumer was led by "
            f"{kill.consumer_leader}, FLEET_RESULTS by {kill.results_leader}, the registry "
            f"by {kill.registry_leader})",
        ]
        if kill.elected_s is not None and kill.first_ack_s is not None:
            after_t = run.finished - (kill.at + kill.first_ack_s)
            after = (run.issues - kill.reported_at_first_ack) / after_t if after_t > 0 else 0.0
            late = (ASK_EVERY_S + ASK_TIMEOUT_S) * 1000
            lines += [
                f"  recovery: leader    {kill.elected_s:7.2f} s  (new tasks stream leader: "
                f"{kill.heir})",
                f"  recovery: first ack {kill.first_ack_s:7.2f} s",
                f"  tasks/s after it    {after:7.1f}  (first ack -> the burn's end)",
                "  recovery, defined:  from t0, just before os.kill(leader pid, SIGKILL), to",
                "    leader:    the first answer to nats-py's js.stream_info('FLEET_TASKS') "
                "whose cluster.leader is a live node;",
                "    first ack: the first answer to js.consumer_info('FLEET_TASKS', "
                f"'{tier_consumer(run.rig.tier)}') (the wolves' durable)",
                "               whose num_pending + num_ack_pending is below its value "
                "at t0: a wolf's ack accepted after the kill.",
                f"    Both asked together every {ASK_EVERY_S * 1000:.0f} ms from a connection "
                f"to the surviving nodes, each ask waiting at most {ASK_TIMEOUT_S * 1000:.0f} "
                f"ms: late by up to ~{late:.0f} ms.",
            ]
    else:
        lines.append("  leader kill         none (--no-kill)")
    problems = run.problems()
    dup = [n for n in range(1, run.issues + 1) if len(run.rig.triage_comments(n)) > 1]
    missing = [n for n in range(1, run.issues + 1) if not run.rig.triage_comments(n)]
    on_bus = sum(run.on_bus.values())
    twice = [n for n, c in run.on_bus.items() if c > 1]
    digests = [text for _, text in run.rig.room.messages if "new result(s)" in text]
    lines += [
        f"  outcomes            {progress_counts(run)}",
        f"  triage comments     {run.issues - len(dup) - len(missing)} issues once, "
        f"{len(dup)} more than once {dup[:10]}, {len(missing)} none {missing[:10]}",
        f"  results on the bus  {on_bus} in FLEET_RESULTS for {len(run.on_bus)} issues; "
        f"{len(twice)} issues more than once {twice[:10]}",
        f"  results in the room {sum(int(d.split()[1]) for d in digests)} in "
        f"{len(digests)} digests (room messages {len(run.rig.room.messages)})",
        f"  exactly once        {'yes' if not problems else 'NO: ' + str(len(problems))}",
    ]
    lines += [f"    {p}" for p in problems[:30]]
    # An issue the room is told was not done: was it triaged all the same?
    service = run.rig.service
    progress = service.store.progress(run.burn_id) if service is not None else None
    results = progress.results if progress is not None else {}
    not_done = sorted(n for n, r in results.items() if r.outcome != "done")
    commented = [n for n in not_done if run.rig.triage_comments(n)]
    lines.append(
        f"  reported not done   {len(not_done)}; of them triaged all the same (one triage "
        f"comment): {len(commented)}"
    )
    for n in not_done[:8]:
        r = results[n]
        lines.append(
            f"    #{n} {r.outcome} by {r.wolf}: {r.summary}; triage comments "
            f"{len(run.rig.triage_comments(n))}"
        )
    # The evidence: what the bot was told of each issue with a problem, and its comments.
    odd = sorted({int(p.split(":")[0][1:]) for p in problems if p.startswith("#")})
    for n in odd[:10]:
        r = results.get(n)
        told = f"{r.outcome} by {r.wolf}: {r.summary}" if r is not None else "no result"
        lines.append(f"    #{n} result: {told}")
        for c in run.rig.gitea.comments(OWNER, REPO, n):
            lines.append(f"    #{n} comment {c['id']} at {c['created_at']}: {c['body'][:300]!r}")
    return lines


async def main(args: argparse.Namespace) -> int:
    quiet_logs("bot ")
    say = stamp(time.monotonic())
    load_before = load()
    version = nats_version()
    kill = "off" if args.no_kill else f"at {args.kill_at:.0%} reported"
    print(
        f"bench/cluster.py: {args.issues} issues, {args.wolves} wolves, {args.nodes} nodes, "
        f"kill {kill}; load {load_before}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        async with cluster_burn(
            Path(tmp),
            issues=args.issues,
            wolves=args.wolves,
            nodes=args.nodes,
            concurrency=args.concurrency,
            single=args.nodes == 1,
            validate=False,
            processes=not args.in_process,
            say=say,
        ) as run:
            stop = asyncio.Event()
            printer = asyncio.create_task(progress(run, say, stop))
            cpu = Cpu(run)
            try:
                await run.burn(
                    kill=not args.no_kill,
                    kill_at=args.kill_at,
                    timeout_s=max(600.0, args.issues * 3.0),
                )
                used = cpu.used(run)
            finally:
                stop.set()
                await printer
            lines = report(run, args, load_before, used, version)
            clean = not run.problems()
    print("\n".join(lines), flush=True)
    return 0 if clean else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--issues", type=int, default=1000)
    parser.add_argument("--wolves", type=int, default=8)
    parser.add_argument("--nodes", type=int, default=3, help="1: a single nats-server")
    parser.add_argument("--concurrency", type=int, default=2, help="tasks at once per wolf")
    parser.add_argument(
        "--kill-at", type=float, default=0.5, help="kill once this share is reported"
    )
    parser.add_argument("--no-kill", action="store_true", help="kill nothing: the control run")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="the wolves in this process, as tests/burn/test_burn_cluster.py runs them",
    )
    sys.exit(asyncio.run(main(parser.parse_args())))
