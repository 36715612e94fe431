"""A burn on a loopback JetStream cluster whose tasks stream loses its leader to SIGKILL.

One runner for the two that need it: tests/burn/test_burn_cluster.py checks what such a burn
leaves behind (every issue triaged once, every result reported once) and bench/cluster.py
times it (tasks/s, the time to recover from the kill). Both run `cluster_burn`, so the
burn that is checked is the burn that is timed.

The parts are `BurnRig`'s (Gitea stand-in, fake model, the bot's BurnService writing into
a recording room, wolves in this process or each in its own) on a `NatsCluster` whose every
stream has a copy on every node. Before the burn the tasks stream's replicas are current
with its leader, so the fault goes in mid-burn and not while the cluster forms. Once
`kill_at` of the issues are reported, the node leading the tasks stream is killed with
SIGKILL; a connection to the surviving nodes then asks, with nats-py's `stream_info` and
`consumer_info`, until the stream names a new leader and the wolves' consumer counts
fewer tasks not yet acked than at the kill (`LeaderKill`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import nats.errors
from nats.aio.client import Client
from nats.js.api import ConsumerInfo, StreamInfo
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from fleet.local.cluster import NatsCluster
from fleet.local.nats import NatsServer
from fleetcore.bus.config import BusConfig
from fleetcore.bus.connect import connect
from fleetcore.bus.messages import BadMessage, Result
from fleetcore.bus.subjects import AGENTS_BUCKET, RESULTS_STREAM, TASKS_STREAM, tier_consumer
from fleetcore.config.burn import BurnConfig
from fleettest.burnrig import OWNER, REPO, BurnRig, stop_process, wolf_process
from fleettest.wait import answer_of, wait_until

# Each ask of a stream's info waits this long for the leader's answer: while the stream
# has no leader nobody answers, and a shorter wait keeps the election's timing fine.
ASK_TIMEOUT_S = 0.25
ASK_EVERY_S = 0.05
REGISTRY_STREAM = f"KV_{AGENTS_BUCKET}"


def cluster_bus(urls: list[str]) -> BusConfig:
    """The burn's bus: a copy of every stream on every node. Heartbeats must outlive a
    leader failover (fleetcore/bus/config.py): a TTL of 15 s."""
    return BusConfig(
        servers=urls,
        replicas=len(urls),
        ack_wait_s=3,
        heartbeat_s=0.5,
        heartbeat_ttl_s=15,
        reconnect_wait_s=0.1,
        reconnect_max_wait_s=0.5,
    )


async def stream_info(js: JetStreamContext, stream: str) -> StreamInfo | None:
    """The stream's info from its leader; None while no leader answers."""
    with contextlib.suppress(nats.errors.Error):
        return await js.stream_info(stream)
    return None


async def consumer_info(js: JetStreamContext, consumer: str) -> ConsumerInfo | None:
    """A consumer of the tasks stream, from the consumer's leader; None while none answers."""
    with contextlib.suppress(nats.errors.Error):
        return await js.consumer_info(TASKS_STREAM, consumer)
    return None


def leader_of(info: StreamInfo | ConsumerInfo | None) -> str | None:
    return info.cluster.leader if info is not None and info.cluster is not None else None


def outstanding(info: ConsumerInfo) -> int:
    """The consumer's tasks not yet acked: an ack (or a term) is all that lowers it."""
    return (info.num_pending or 0) + (info.num_ack_pending or 0)


async def settled(js: JetStreamContext, replicas: int, deadline_s: float = 60.0) -> None:
    """Until the tasks stream has a leader and all its other replicas are current."""

    async def current() -> bool | None:
        info = await stream_info(js, TASKS_STREAM)
        cluster = info.cluster if info is not None else None
        peers = (cluster.replicas or []) if cluster is not None else []
        if cluster is not None and cluster.leader and len(peers) == replicas - 1:
            if all(p.current for p in peers):
                return True
        return None

    await answer_of(current, poll_s=ASK_EVERY_S, timeout=deadline_s, what="replicas current")


@dataclass
class LeaderKill:
    """The kill and the recovery from it; times are seconds after the SIGKILL."""

    leader: str  # the tasks stream's leader, killed
    # Who led the wolves' durable consumer on the tasks stream, the results stream and
    # the wolves' registry at the kill (where it was the same node, they lost it too).
    consumer_leader: str | None
    results_leader: str | None
    registry_leader: str | None
    reported: int  # results the bot had recorded at the kill
    queued: int  # tasks in the (work-queue) stream at the kill
    outstanding: int  # the consumer's tasks not yet acked (pending + ack pending)
    at: float  # time.monotonic() just before the SIGKILL
    heir: str | None = None
    # The first answer to `stream_info` naming a live node as the tasks stream's leader.
    elected_s: float | None = None
    # The first answer to `consumer_info` (the wolves' durable) with fewer tasks not yet
    # acked than at the kill: a wolf's ack was accepted after it.
    first_ack_s: float | None = None
    reported_at_first_ack: int = 0


@dataclass
class ClusterBurn:
    """A rig on a cluster, wolves alive: `burn()` runs the burn, `problems()` checks it."""

    rig: BurnRig
    server: NatsCluster | NatsServer
    bus: BusConfig
    admin: Client  # a connection of the test's own, to any node
    issues: int
    wolves: int
    say: Callable[[str], None]
    started: float = 0.0  # time.monotonic() as `rig.burn()` began queueing tasks
    finished: float = 0.0  # ... when the bot marked the burn finished
    burn_id: str = ""
    # time.monotonic() when the bot had reported a tenth of the issues (a steady state's
    # start: every wolf busy, the first digests out).
    tenth_at: float = 0.0
    tenth: int = 0
    kill: LeaderKill | None = None
    # Results in FLEET_RESULTS for this burn, by issue (read after the burn).
    on_bus: Counter[int] = field(default_factory=Counter)
    # The wolves, when each runs in a process of its own.
    processes: list[mp.process.BaseProcess] = field(default_factory=list)

    @property
    def js(self) -> JetStreamContext:
        """The admin connection's JetStream, asking at most ASK_TIMEOUT_S."""
        return self.admin.jetstream(timeout=ASK_TIMEOUT_S)

    @property
    def nodes(self) -> int:
        """1: a single nats-server, not a cluster."""
        return len(self.bus.servers)

    @property
    def replicas(self) -> int:
        return self.bus.replicas

    def reported(self) -> int:
        """Results the bot has recorded for this burn (each issue once)."""
        service = self.rig.service
        if not self.burn_id or service is None:
            return 0
        progress = service.store.progress(self.burn_id)
        return int(progress.finished) if progress is not None else 0

    async def wait_reported(self, count: int, timeout: float) -> None:
        """Until the bot has recorded `count` results: re-checked at every room change
        (the progress message is edited as results arrive), and every second."""
        await wait_until(
            lambda: self.reported() >= count,
            changed=self.rig.room.changed,
            poll_s=1.0,
            timeout=timeout,
            what=f"{count} results reported",
        )

    async def start_wolves(self, concurrency: int, processes: bool) -> None:
        """Until every wolf is alive in the registry and the tasks stream's replicas are
        current (the fault goes in mid-burn, not while the cluster forms)."""
        rig = self.rig
        ctx = mp.get_context("spawn")
        for i in range(1, self.wolves + 1):
            name = f"wolf-{i}"
            if not processes:
                await rig.start_wolf(name, concurrency=concurrency)
                continue
            proc = ctx.Process(
                target=wolf_process_main,
                name=name,
                args=(
                    name,
                    rig.tier,
                    self.bus.model_dump_json(),
                    rig.gitea.url,
                    rig.token,
                    rig.model.base_url,
                    rig.register(name).nsec_secret(),
                    concurrency,
                ),
            )
            proc.start()
            self.processes.append(proc)
        registry = rig.service.registry if rig.service is not None else None
        assert registry is not None

        async def all_alive() -> bool | None:
            dead = [p.name for p in self.processes if not p.is_alive()]
            if dead:
                raise RuntimeError(f"wolf processes exited: {dead}")
            return True if len(await registry.alive_names()) >= self.wolves else None

        # The registry is asked: a heartbeat signals nothing a waiter could wait on. A wolf
        # process starts slowly (imports, the crisis screen's model): minutes on a busy box.
        timeout = 600 if processes else 60
        await answer_of(all_alive, poll_s=0.1, timeout=timeout, what=f"{self.wolves} wolves alive")
        if self.nodes > 1:
            await settled(self.js, self.replicas)
        self.say(f"{self.wolves} wolves alive; tasks stream replicas current")

    async def burn(self, *, kill: bool = True, kill_at: float = 0.1, timeout_s: float) -> None:
        """The whole burn; the tasks stream's leader is killed once `kill_at` of the issues
        are reported (on a cluster, unless `kill` is off). Afterwards `on_bus` is read."""
        rig = self.rig
        self.started = time.monotonic()
        self.burn_id = await rig.burn()
        queued_s = time.monotonic() - self.started
        self.say(f"burn {self.burn_id}: {self.issues} tasks queued in {queued_s:.1f}s")
        await self.wait_reported(max(1, self.issues // 10), timeout=timeout_s)
        self.tenth_at, self.tenth = time.monotonic(), self.reported()
        if kill and isinstance(self.server, NatsCluster):
            await self.wait_reported(max(1, int(self.issues * kill_at)), timeout=timeout_s)
            self.kill = await self._kill_leader(self.server)
        await rig.wait_finished(self.burn_id, timeout=timeout_s)
        self.finished = time.monotonic()
        self.say(f"burn finished: {self.reported()}/{self.issues} reported")
        self.on_bus = await results_on_bus(self.admin.jetstream(timeout=5), self.burn_id)

    async def _kill_leader(self, cluster: NatsCluster) -> LeaderKill:
        js = self.js
        info = await answer_of(
            lambda: stream_info(js, TASKS_STREAM), poll_s=ASK_EVERY_S, timeout=30, what="tasks"
        )
        leader = leader_of(info)
        assert leader is not None, "the tasks stream has no leader to kill"
        results = leader_of(await stream_info(js, RESULTS_STREAM))
        registry = leader_of(await stream_info(js, REGISTRY_STREAM))
        # Asked from the surviving nodes: the watcher does not lose its own connection.
        dead = cluster.node_index(leader)
        survivors = [url for i, url in enumerate(cluster.urls) if i != dead]
        watcher = await connect(
            self.bus.model_copy(update={"servers": survivors}),
            "watcher",
            first_connect_timeout_s=10,
        )
        consumer = tier_consumer(self.rig.tier)
        try:
            wjs = watcher.jetstream(timeout=ASK_TIMEOUT_S)

            async def both() -> tuple[StreamInfo | None, ConsumerInfo | None]:
                return await asyncio.gather(
                    stream_info(wjs, TASKS_STREAM), consumer_info(wjs, consumer)
                )

            async def answered() -> tuple[StreamInfo, ConsumerInfo] | None:
                s_info, c_info = await both()
                return None if s_info is None or c_info is None else (s_info, c_info)

            s_info, c_info = await answer_of(
                answered, poll_s=ASK_EVERY_S, timeout=30, what="tasks stream and consumer"
            )
            done = LeaderKill(
                leader,
                leader_of(c_info),
                results,
                registry,
                self.reported(),
                s_info.state.messages,
                outstanding(c_info),
                time.monotonic(),
            )
            await cluster.kill_node(dead)
            self.say(
                f"killed {leader} (SIGKILL), the tasks stream's leader, at {done.reported} "
                f"reported, {done.outstanding} tasks not yet acked"
            )

            async def recovered() -> bool | None:
                s_now, c_now = await both()
                now = time.monotonic() - done.at
                heir = leader_of(s_now)
                if done.elected_s is None and heir not in (None, leader):
                    done.heir, done.elected_s = heir, now
                    self.say(f"{heir} leads the tasks stream {now:.2f}s after the kill")
                if c_now is not None and done.first_ack_s is None:
                    if outstanding(c_now) < done.outstanding:
                        done.first_ack_s = now
                        done.reported_at_first_ack = self.reported()
                        self.say(f"a task acked {now:.2f}s after the kill")
                if done.elected_s is not None and done.first_ack_s is not None:
                    return True
                return None

            await answer_of(recovered, poll_s=ASK_EVERY_S, timeout=120, what="recovery")
        finally:
            await watcher.close()
        return done

    def problems(self) -> list[str]:
        """Everything that was not done exactly once; [] for a clean burn."""
        rig, out = self.rig, []
        for n in range(1, self.issues + 1):
            comments = rig.triage_comments(n)
            if len(comments) != 1:
                out.append(f"#{n}: {len(comments)} triage comments")
            labels = rig.gitea.issue(OWNER, REPO, n)["labels"]
            if "triaged" not in labels:
                out.append(f"#{n}: not labelled triaged {labels}")
            if [lb for lb in labels if lb.startswith("assigned:")]:
                out.append(f"#{n}: still assigned {labels}")
            if self.on_bus[n] != 1:
                out.append(f"#{n}: {self.on_bus[n]} results in {RESULTS_STREAM}")
        # Digests say "web: N new result(s)"; over the burn they add up to every issue once.
        digests = [text for _, text in rig.room.messages if "new result(s)" in text]
        digested = sum(int(d.split()[1]) for d in digests)
        if digested != self.issues:
            out.append(f"the room's digests report {digested} results, not {self.issues}")
        service = rig.service
        assert service is not None
        undigested = [
            n for n in range(1, self.issues + 1) if not service.store.digested(self.burn_id, n)
        ]
        if undigested:
            out.append(f"never digested: {undigested[:20]}")
        # What the room is told: every issue here is triaged, so every reported result says done
        # (a wolf that lost a claim race once reported "skipped" for an issue it saw triaged).
        progress = service.store.progress(self.burn_id)
        told = progress.results if progress is not None else {}
        out.extend(
            f"#{n}: reported {r.outcome} by {r.wolf}: {r.summary}"
            for n, r in sorted(told.items())
            if r.outcome != "done"
        )
        final = rig.room.current(rig.room.messages[0][0])
        if not (final.startswith("Burn finished") and f"{self.issues}/{self.issues}" in final):
            out.append(f"progress message: {final!r}")
        out.extend(f"Gitea stand-in: {v}" for v in rig.gitea.violations)
        return out


async def results_on_bus(js: JetStreamContext, burn_id: str) -> Counter[int]:
    """How many results FLEET_RESULTS holds for each issue of the burn."""
    info = await js.stream_info(RESULTS_STREAM)
    counts: Counter[int] = Counter()
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            msg = await js.get_msg(RESULTS_STREAM, seq)
        except NotFoundError:
            continue
        with contextlib.suppress(BadMessage):
            result = Result.from_bytes(msg.data or b"")
            if result.burn_id == burn_id:
                counts[result.issue_number] += 1
    return counts


def _quiet(_text: str) -> None:
    pass


def quiet_logs(prefix: str) -> None:
    """Errors only, one line each (no tracebacks): a killed node's clients warn, and a
    task caught by the failover fails once and is retried."""
    logging.basicConfig(level=logging.ERROR, format=f"  log: {prefix}%(name)s %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_no_traceback)


def _no_traceback(record: logging.LogRecord) -> bool:
    if record.exc_info and record.exc_info[1] is not None:
        record.msg = f"{record.msg} ({type(record.exc_info[1]).__name__})"
    record.exc_info = None
    record.exc_text = None
    return True


def wolf_process_main(
    name: str,
    tier: str,
    bus_json: str,
    gitea_url: str,
    token: str,
    model_url: str,
    nsec: str,
    concurrency: int,
) -> None:
    """A wolf process's entry point (`multiprocessing`, spawned)."""
    quiet_logs(f"{name} ")
    bus = BusConfig.model_validate_json(bus_json)
    asyncio.run(wolf_process(name, tier, bus, gitea_url, token, model_url, nsec, concurrency))


@contextlib.asynccontextmanager
async def cluster_burn(
    tmp: Path,
    *,
    issues: int,
    wolves: int,
    nodes: int = 3,
    concurrency: int = 2,
    single: bool = False,
    validate: bool = True,
    processes: bool = False,
    say: Callable[[str], None] = _quiet,
) -> AsyncIterator[ClusterBurn]:
    """A cluster of `nodes` nats-servers, the rig on it, its wolves alive: yields the run
    for `burn()` and the checks, and takes it all down after.

    `single`: one nats-server instead of a cluster (nothing can be killed).
    `validate=False`: the Gitea stand-in skips its schema checks (benchmarks measure the
    fleet, not them). `processes`: each wolf in a process of its own (as deployed: a
    wolf's CPU-bound work, the crisis screen, does not stall the others or the bot).
    `say` hears each step.
    """
    server: NatsCluster | NatsServer = (
        NatsServer(tmp / "nats") if single else NatsCluster(tmp / "nats-cluster", nodes)
    )
    t0 = time.monotonic()
    await server.start()
    try:
        urls = [server.url] if isinstance(server, NatsServer) else server.urls
        say(f"nats: {len(urls)} node(s) up in {time.monotonic() - t0:.1f}s")
        bus = cluster_bus(urls)
        burn_cfg = BurnConfig(edit_interval_s=0.3, digest_interval_s=5, max_limit=max(1000, issues))
        async with BurnRig(
            server.url, tmp / "bot", issues=issues, bus=bus, burn=burn_cfg, validate=validate
        ) as rig:
            admin = await connect(bus, "admin", first_connect_timeout_s=10)
            try:
                run = ClusterBurn(rig, server, bus, admin, issues, wolves, say)
                try:
                    await run.start_wolves(concurrency, processes)
                    yield run
                finally:
                    for proc in run.processes:
                        stop_process(proc)
            finally:
                await admin.close()
    finally:
        await server.stop()
