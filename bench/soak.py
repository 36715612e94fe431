"""Soak: operators send commands into many encrypted rooms at a steady rate, with a burn
every minute, on the whole local fleet; does anything get lost, slow down or grow?

The fleet is `fleet up`'s (fleet/local/up.py: Synapse, nats-server with NKey auth, the
sandbox Gitea, the provisioned wolf-1 on the sandbox model), in a temporary state
directory. The bot runs alone in a child process, so its resident memory is its own; it
hands over what it measures itself (`bot.processing_s`: event handed to the pipeline ->
reply sent, and `bot.loop_lag_s`, its event loop's lag) when asked. Here, `--operators`
operator accounts (nio clients, end-to-end encrypted) own `--rooms` rooms and send `--rate`
commands per second across them, round robin, for `--minutes`; each device sends one
message at a time. Every `--burn-every` seconds the fleet's own operator, on a device of
its own, files issues with `!issue` in the project room and runs `!burn`; wolf-1 triages.

A command counts as answered when its reply arrives (the bot replies to each); lost when
none has arrived `--drain` seconds after the load ends. Prints progress every 30 s, then
the table: messages sent, answered, lost, how far the senders fell behind their schedule,
bot processing p50/p99, bot RSS at start and end, loop lag p99, burns started/finished,
and the load average beside them (the operators share the machine with the fleet: on a
busy one they fall behind, and the send delay says so).

    .venv/bin/python bench/soak.py [--minutes 10] [--rooms 50] [--rate 2]
                                   [--burn-every 60] [--operators 5] [--drain 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # fleettest (burn.py)
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other benches' helpers

from burn import cpu_s, machine_busy_s, quiet_shutdown
from roundtrip import pct, rss_mb

from agents.wolf import build_wolf
from fleet.local.busauth import LOCAL_WOLF
from fleet.local.operator import OperatorClient, Seen
from fleet.local.synapse import Account
from fleet.local.up import SANDBOX_REPO, LocalFleet
from fleet.sandbox.model import MODEL_ID, SandboxModel
from fleetcore import log
from fleetcore.config import load_config
from fleetcore.proc import recorded_process

BOT_SCRIPT = Path(__file__).resolve().with_name("soak_bot.py")
PROGRESS_EVERY_S = 30.0
ISSUES_PER_BURN = 3
BURN_FINISH_TIMEOUT_S = 300.0

# The steady commands, taken in turn, with what a right answer starts with. None of them
# names a model or carries free text: nothing here goes near the crisis path.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("!ping", "pong"),
    ("!status", "Hermes fleet"),
    ("!help", "Commands:"),
    ("!agents", "agents"),
    ("!help burn", "!burn:"),
    ("!burn status", "No burn has run in this room."),
)


# -- the bot, in its own process ---------------------------------------------------------


class BotProcess:
    """The bot alone in a process (bench/soak_bot.py), handing over its own metrics."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.proc: asyncio.subprocess.Process | None = None
        self.processing: list[float] = []
        self.lag: list[float] = []

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(BOT_SCRIPT),
            str(self.config_path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 24,  # a report is one JSON line
        )
        ready = await self._line(240)
        if ready != "ready":
            raise RuntimeError(f"the bot process said {ready!r} (its stderr says why)")

    async def _line(self, timeout: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"the bot process ended (exit {await self.proc.wait()})")
        return line.decode().strip()

    async def report(self) -> tuple[list[float], list[float]]:
        """What the bot measured since the last report: (processing_s, loop_lag_s)."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(b"report\n")
        await self.proc.stdin.drain()
        got = json.loads(await self._line(60))
        processing, lag = got["bot.processing_s"], got["bot.loop_lag_s"]
        self.processing += processing
        self.lag += lag
        return processing, lag

    async def stop(self) -> None:
        """Its stdin closed, the bot stops as on Ctrl-C; killed if it takes over 30 s."""
        if self.proc is None or self.proc.returncode is not None:
            return
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


# -- operators ---------------------------------------------------------------------------


@dataclass
class Sent:
    event_id: str
    command: str
    expect: str
    room_id: str
    slot: float  # when it was due (perf_counter)
    at: float  # when the homeserver had accepted it


@dataclass
class Operator:
    client: OperatorClient
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one send at a time per device
    scanned: int = 0  # how much of client.seen has been indexed


@dataclass
class Ledger:
    """Every command sent that expects a reply, and the replies seen so far."""

    sent: dict[str, Sent] = field(default_factory=dict)
    replies: dict[str, Seen] = field(default_factory=dict)
    send_failures: list[str] = field(default_factory=list)

    def index(self, op: Operator) -> None:
        seen = op.client.seen
        for s in seen[op.scanned :]:
            if s.reply_to is not None and s.reply_to not in self.replies:
                self.replies[s.reply_to] = s
        op.scanned = len(seen)

    def answered(self) -> int:
        return sum(1 for event_id in self.sent if event_id in self.replies)

    def pending(self, room_ids: set[str] | None = None) -> list[Sent]:
        return [
            s
            for s in self.sent.values()
            if s.event_id not in self.replies and (room_ids is None or s.room_id in room_ids)
        ]

    def wrong(self) -> list[tuple[Sent, str]]:
        return [
            (s, self.replies[s.event_id].body)
            for s in self.sent.values()
            if s.event_id in self.replies and not self.replies[s.event_id].body.startswith(s.expect)
        ]

    def send_delays(self) -> list[float]:
        """Slot -> accepted, per command: how far the operators fell behind their schedule."""
        return [s.at - s.slot for s in self.sent.values()]

    async def send(self, op: Operator, room_id: str, command: str, expect: str) -> str | None:
        slot = time.perf_counter()
        async with op.lock:
            try:
                event_id = await op.client.send_text(room_id, command)
            except Exception as exc:  # counted and shown, never fatal to the soak
                self.send_failures.append(f"{command} in {room_id}: {type(exc).__name__}: {exc}")
                return None
            self.sent[event_id] = Sent(
                event_id, command, expect, room_id, slot, time.perf_counter()
            )
            return event_id

    async def wait_answered(self, op: Operator, room_ids: set[str], timeout: float) -> None:
        def answered() -> bool:
            self.index(op)
            return not self.pending(room_ids)

        await op.client.wait_for(answered, timeout)


# -- burns -------------------------------------------------------------------------------


@dataclass
class Burns:
    started: int = 0
    finished: int = 0
    refused: list[str] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)  # !burn -> "Burn finished"
    late: list[float] = field(default_factory=list)  # due -> its progress message
    waiting: set[asyncio.Task[None]] = field(default_factory=set)


async def burn_cycle(
    n: int, due: float, op: Operator, room: str, bot_user: str, ledger: Ledger, burns: Burns
) -> None:
    """File a few issues, `!burn`, then (in a task of its own) wait for it to finish."""
    client = op.client
    titles = [f"Soak {n}.{j}: the CSV export drops its last row" for j in range(ISSUES_PER_BURN)]
    for title in titles:
        event = await ledger.send(
            op, room, f"!issue {title}\nSeen during the soak run.", "Opened #"
        )
        if event is not None:
            await client.wait_reply(event, timeout=120)
    before = time.perf_counter()
    event = await ledger_free_send(op, room, "!burn")

    def started() -> Seen | None:
        for s in reversed(client.seen):
            if s.received_at < before:
                break
            if s.room_id != room or s.sender != bot_user:
                continue
            if s.reply_to == event:
                return s  # refused: the burn's answer is a progress message, not a reply
            if s.replaces is None and re.match(r"Burn (finished )?b[0-9a-f]+ ", s.body):
                return s
        return None

    first: Seen = await client.wait_for(started, timeout=120)
    if first.reply_to == event:
        burns.refused.append(first.body.splitlines()[0])
        return
    burns.started += 1
    burns.late.append(first.received_at - due)

    def finished() -> bool:
        return any(
            s.room_id == room
            and (s.event_id == first.event_id or s.replaces == first.event_id)
            and s.body.lstrip("* ").startswith("Burn finished")
            for s in reversed(client.seen)
        )

    async def wait_finished() -> None:
        try:
            await client.wait_for(finished, timeout=BURN_FINISH_TIMEOUT_S)
        except TimeoutError:
            return
        burns.finished += 1
        burns.durations.append(time.perf_counter() - before)

    task = asyncio.create_task(wait_finished())
    burns.waiting.add(task)
    task.add_done_callback(burns.waiting.discard)


async def ledger_free_send(op: Operator, room: str, text: str) -> str:
    """`!burn` answers with a progress message, not a reply: counted apart (Burns)."""
    async with op.lock:
        return await op.client.send_text(room, text)


# -- the soak ----------------------------------------------------------------------------


def ms(values: list[float], p: float) -> str:
    return f"{pct(values, p) * 1000:.1f}" if values else "n/a"


async def setup_rooms(ops: list[Operator], rooms: int, bot_user: str) -> list[tuple[Operator, str]]:
    """`rooms` encrypted rooms, dealt out to the operators; each warmed up with one `!ping`
    (Olm sessions, room keys), not counted."""
    owned: list[list[int]] = [list(range(i, rooms, len(ops))) for i in range(len(ops))]
    out: dict[int, tuple[Operator, str]] = {}

    async def make(op: Operator, numbers: list[int]) -> None:
        for n in numbers:
            room = await op.client.create_encrypted_room(f"soak-{n}", [bot_user])
            await op.client.wait_joined(room, bot_user, timeout=120)
            await op.client.ask(room, "!ping", timeout=120)
            out[n] = (op, room)

    await asyncio.gather(*(make(op, numbers) for op, numbers in zip(ops, owned, strict=True)))
    return [out[n] for n in range(rooms)]


async def project_room(op: Operator, bot_user: str) -> str:
    """The sandbox project's room: asked for in a room of `op`'s own, made by the bot."""
    control = await op.client.create_encrypted_room("soak-control", [bot_user])
    await op.client.wait_joined(control, bot_user, timeout=120)
    repo = "/".join(SANDBOX_REPO)
    reply = await op.client.ask(control, f"!project add sandbox {repo}", timeout=120)
    m = re.search(r"room (![^ ]+)", reply.body)
    if m is None:
        raise RuntimeError(f"no project room: {reply.body}")
    await op.client.join(m.group(1), timeout=120)
    return m.group(1)


async def soak(args: argparse.Namespace, fleet: LocalFleet, accounts: list[Account]) -> None:
    bot_user = fleet.accounts["bot"].user_id
    bot = BotProcess(fleet.config_path)
    await bot.start()
    wolf, wolf_gitea, wolf_chain = build_wolf(
        load_config(fleet.wolf_config_path), LOCAL_WOLF, "wolves"
    )
    wolf_task = asyncio.create_task(wolf.run())
    ops: list[Operator] = []
    try:
        # The fleet's own operator runs the burns, on a device of their own: a burn never
        # waits behind the steady operators' sends.
        for i, acc in enumerate([fleet.accounts["operator"], *accounts]):
            client = OperatorClient(
                fleet.synapse.url, acc.user_id, acc.password, fleet.state_dir / f"soak-op{i}"
            )
            await client.login(device_name=f"soak-{i}")
            ops.append(Operator(client))
        burner, senders = ops[0], ops[1:]
        t_setup = time.perf_counter()
        rooms = await setup_rooms(senders, args.rooms, bot_user)
        burn_room = await project_room(burner, bot_user)
        print(
            f"setup: {args.rooms} encrypted rooms across {len(senders)} operators, and the "
            f"project room, in {time.perf_counter() - t_setup:.0f} s",
            flush=True,
        )
        await bot.report()  # set-up figures are not the soak's
        bot.processing.clear()
        bot.lag.clear()
        rss_start = rss_mb(bot.pid)
        synapse_pid = recorded_process(fleet.synapse.pidfile)
        cpu_start = cpu_s(bot.pid)
        synapse_start = cpu_s(synapse_pid) if synapse_pid else 0.0
        here_start = time.process_time()
        machine_start = machine_busy_s()

        ledger = Ledger()
        burns = Burns()
        loop = asyncio.get_running_loop()
        duration = args.minutes * 60
        total = round(args.rate * duration)
        t0 = time.perf_counter()

        async def steady() -> None:
            sending: set[asyncio.Task[str | None]] = set()
            for i in range(total):
                due = t0 + i / args.rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))  # pacing the load
                op, room = rooms[i % len(rooms)]
                command, expect = COMMANDS[(i // len(rooms)) % len(COMMANDS)]
                task = asyncio.create_task(ledger.send(op, room, command, expect))
                sending.add(task)
                task.add_done_callback(sending.discard)
            if sending:
                await asyncio.wait(sending)

        async def burning() -> None:
            n = 0
            while (due := t0 + (n + 0.5) * args.burn_every) < t0 + duration:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))  # one burn a period
                n += 1
                try:
                    await burn_cycle(n, due, burner, burn_room, bot_user, ledger, burns)
                except TimeoutError as exc:
                    burns.refused.append(f"burn {n}: no answer ({exc})")

        async def progress() -> None:
            while True:
                await asyncio.sleep(PROGRESS_EVERY_S)  # a progress line every 30 s
                processing, lag = await bot.report()
                for op in ops:
                    ledger.index(op)
                now = time.perf_counter()
                overdue = sum(1 for s in ledger.pending() if now - s.at > 30)
                print(
                    f"[{now - t0:5.0f} s] sent {len(ledger.sent):5d}  answered "
                    f"{ledger.answered():5d}  unanswered>30s {overdue:3d}  "
                    f"processing p99 {ms(processing, 99)} ms  "
                    f"loop lag p99 {ms(lag, 99)} ms  RSS {rss_mb(bot.pid):.0f} MB  "
                    f"burns {burns.started}/{burns.finished}  load {os.getloadavg()[0]:.2f}",
                    flush=True,
                )

        reporter = asyncio.create_task(progress())
        try:
            await asyncio.gather(steady(), burning())
            load_end = time.perf_counter()
            # Drain: every reply still due, up to --drain s after the last send.
            drain_until = loop.time() + args.drain
            rooms_of: dict[int, set[str]] = {}
            for op, room in rooms:
                rooms_of.setdefault(id(op), set()).add(room)
            rooms_of.setdefault(id(burner), set()).add(burn_room)
            for op in ops:
                try:
                    await ledger.wait_answered(
                        op, rooms_of[id(op)], max(0.1, drain_until - loop.time())
                    )
                except TimeoutError:
                    pass
            if burns.waiting:
                await asyncio.wait(burns.waiting, timeout=max(0.1, drain_until - loop.time()))
        finally:
            reporter.cancel()
        await bot.report()
        rss_end = rss_mb(bot.pid)
        cpu_bot = cpu_s(bot.pid) - cpu_start
        cpu_synapse = cpu_s(synapse_pid) - synapse_start if synapse_pid else float("nan")
        cpu_here = time.process_time() - here_start
        cpu_machine = machine_busy_s() - machine_start
        for op in ops:
            ledger.index(op)
        wall = time.perf_counter() - t0
        load = os.getloadavg()

        lost = ledger.pending()
        wrong = ledger.wrong()
        trips = [
            ledger.replies[s.event_id].received_at - s.at
            for s in ledger.sent.values()
            if s.event_id in ledger.replies
        ]
        proc, lag = bot.processing, bot.lag
        took = (
            f"!burn -> finished median {statistics.median(burns.durations):.1f} s; "
            f"started late by up to {max(burns.late):.1f} s"
            if burns.durations and burns.late
            else ""
        )
        delays = ledger.send_delays()
        late = sum(1 for d in delays if d > 1.0)
        rows = [
            (
                "messages sent",
                f"{len(ledger.sent)}",
                f"+ {burns.started + len(burns.refused)} !burn",
            ),
            ("answered", f"{ledger.answered()}", ""),
            ("lost (sent, never answered)", f"{len(lost)}", f"waited {args.drain:g} s at the end"),
            ("answered wrongly", f"{len(wrong)}", ""),
            ("send failures", f"{len(ledger.send_failures)}", ""),
            (
                "send delay p50 / p99 (ms)",
                f"{ms(delays, 50)} / {ms(delays, 99)}",
                f"slot -> accepted by Synapse; max {ms(delays, 100)}, {late} over 1 s",
            ),
            (
                "commands/s achieved",
                f"{len(ledger.sent) / (load_end - t0):.2f}",
                f"of {args.rate:g} asked, over {load_end - t0:.0f} s",
            ),
            (
                "bot processing p50 / p99 (ms)",
                f"{ms(proc, 50)} / {ms(proc, 99)}",
                f"max {ms(proc, 100)}, {len(proc)} messages",
            ),
            (
                "round trip p50 / p99 (ms)",
                f"{ms(trips, 50)} / {ms(trips, 99)}",
                "operator sends -> operator has decrypted the reply",
            ),
            (
                "bot RSS start / end (MB)",
                f"{rss_start:.1f} / {rss_end:.1f}",
                f"{rss_end - rss_start:+.1f}",
            ),
            (
                "loop lag p50 / p99 (ms)",
                f"{ms(lag, 50)} / {ms(lag, 99)}",
                f"max {ms(lag, 100)}, {len(lag)} samples",
            ),
            (
                "bot CPU (s)",
                f"{cpu_bot:.1f}",
                f"{100 * cpu_bot / wall:.0f}% of a core over {wall:.0f} s; "
                f"{1000 * cpu_bot / max(1, len(proc)):.0f} ms a message",
            ),
            (
                "CPU s: Synapse / operators",
                f"{cpu_synapse:.1f} / {cpu_here:.1f}",
                "the bench process: operators, wolf-1, sandbox Gitea and model",
            ),
            (
                "CPU s: the whole machine",
                f"{cpu_machine:.1f}",
                f"of {wall * (os.cpu_count() or 1):.0f} core-seconds; "
                f"{cpu_machine - cpu_bot - cpu_synapse - cpu_here:.0f} s by nats-server "
                "and everything else",
            ),
            ("burns started / finished", f"{burns.started} / {burns.finished}", took),
            (
                "load average 1/5/15 min",
                " ".join(f"{x:.2f}" for x in load),
                f"{os.cpu_count()} cores",
            ),
        ]
        print()
        print(
            f"soak: {args.minutes:g} min, {args.rooms} rooms (+ the project room), "
            f"{len(ops)} operators, {args.rate:g} commands/s, a burn every {args.burn_every:g} s "
            f"({ISSUES_PER_BURN} !issue, then !burn)"
        )
        for name, value, note in rows:
            print(f"  {name:<31} {value:>17}" + (f"   ({note})" if note else ""))
        for text in burns.refused:
            print(f"    burn refused: {text}")
        for s in lost[:20]:
            print(f"    lost: {s.command!r} in {s.room_id}, sent at {s.at - t0:.1f} s")
        for s, body in wrong[:20]:
            print(f"    wrong answer to {s.command!r}: {body.splitlines()[0][:120]!r}")
        for failure in ledger.send_failures[:20]:
            print(f"    send failed: {failure}")
        undecryptable = sum(len(op.client.undecryptable) for op in ops)
        if undecryptable:
            print(f"    operators could not decrypt {undecryptable} event(s)")
    finally:
        for op in ops:
            await op.client.close()
        quiet_shutdown()
        wolf.stop()
        try:
            await asyncio.wait_for(wolf_task, 15)
        except Exception:
            pass
        await wolf_gitea.aclose()
        await wolf_chain.aclose()
        await bot.stop()


async def main(args: argparse.Namespace) -> None:
    log.setup("warning")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    n_steady = max(1, min(args.operators, args.rooms))
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        async with SandboxModel() as model:
            steady_users = [f"soakop{i}" for i in range(1, n_steady + 1)]
            extra = {
                "model": {"default": MODEL_ID, "provider": "sandbox"},
                "fallback_providers": [
                    {"provider": "sandbox", "model": MODEL_ID, "base_url": model.base_url}
                ],
                # The local homeserver's name is `localhost`; checked below once registered.
                "operators": ["@operator:localhost", *(f"@{u}:localhost" for u in steady_users)],
            }
            async with LocalFleet.running(Path(tmp) / "fleet", extra) as fleet:
                steady_ops = [await fleet.synapse.register(u) for u in steady_users]
                expected = set(fleet.load().operators)
                actual = {fleet.accounts["operator"].user_id, *(a.user_id for a in steady_ops)}
                if expected != actual:
                    raise RuntimeError(f"operators {sorted(actual)} are not {sorted(expected)}")
                await soak(args, fleet, steady_ops)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument(
        "--rate", type=float, default=2.0, help="commands per second, across all rooms"
    )
    parser.add_argument("--burn-every", type=float, default=60.0, help="seconds")
    parser.add_argument(
        "--operators", type=int, default=5, help="operator accounts sending the steady commands"
    )
    parser.add_argument(
        "--drain", type=float, default=60.0, help="seconds to wait for replies after the load"
    )
    asyncio.run(main(parser.parse_args()))
