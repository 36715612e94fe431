"""Round trip of `!ping` on a local Synapse, and the bot's own share of it.

Prints median and p99 of (a) the full round trip seen by an operator client (send ->
decrypted reply) and (b) the bot's processing time (event handed to the pipeline -> send
call). Then joins the bot to N encrypted rooms and prints its resident memory.

    .venv/bin/python bench/roundtrip.py [--pings 200] [--rooms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from fleet.local.botrunner import BotRunner
from fleet.local.operator import OperatorClient
from fleet.local.synapse import Account, SynapseServer
from fleetcore.config import FleetConfig, parse_config

REPO = Path(__file__).resolve().parents[1]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_config(
    tmp: Path, homeserver: str, bot: Account, operator: str, **extra: Any
) -> FleetConfig:
    """A bot on the bench's Synapse with one operator; `extra` adds config sections."""
    (tmp / "pw").write_text(bot.password)
    return parse_config(
        {
            "state_dir": str(tmp / "state"),
            "soul": str(REPO / "SOUL.md"),
            "matrix": {
                "homeserver": homeserver,
                "user_id": bot.user_id,
                "password": {"file": str(tmp / "pw")},
                "trust": {"policy": "tofu"},
            },
            "operators": [operator],
            **extra,
        }
    )


async def main(pings: int, rooms: int) -> None:
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        synapse = SynapseServer(tmp / "synapse")
        await synapse.start()
        try:
            bot = await synapse.register("benchbot")
            op = await synapse.register("benchop")
            cfg = bench_config(tmp, synapse.url, bot, op.user_id)
            runner = BotRunner(cfg)
            app = await runner.start()
            operator = OperatorClient(synapse.url, op.user_id, op.password, tmp / "op")
            await operator.login()
            room = await operator.create_encrypted_room("bench", [bot.user_id])
            await operator.wait_joined(room, bot.user_id)
            await operator.ask(room, "!ping")  # warm up: Olm sessions, room keys
            own: list[float] = []
            app.metrics.subscribe(
                lambda name, value: own.append(value) if name == "bot.processing_s" else None
            )
            round_trips = []
            for _ in range(pings):
                t0 = time.perf_counter()
                await operator.ask(room, "!ping")
                round_trips.append(time.perf_counter() - t0)
            print(f"pings: {pings}")
            print(
                f"round trip   median {statistics.median(round_trips) * 1000:7.2f} ms"
                f"   p99 {pct(round_trips, 99) * 1000:7.2f} ms"
            )
            print(
                f"bot process  median {statistics.median(own) * 1000:7.3f} ms"
                f"   p99 {pct(own, 99) * 1000:7.3f} ms   (target p99 < 5 ms)"
            )
            await runner.stop()

            # Memory: the bot alone, as `fleet bot` runs it, in its own process.
            config_path = tmp / "config.yaml"
            config_path.write_text(yaml.safe_dump(cfg.model_dump(mode="json", exclude_none=True)))
            proc = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).with_name("fleet")),
                "bot",
                "--config",
                str(config_path),
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                await operator.ask(room, "!ping", timeout=60)
                for i in range(rooms - 1):
                    extra = await operator.create_encrypted_room(f"bench-{i}", [bot.user_id])
                    await operator.wait_joined(extra, bot.user_id)
                    await operator.ask(extra, "!ping")
                print(
                    f"bot RSS after joining {rooms} encrypted rooms: "
                    f"{rss_mb(proc.pid):.0f} MB (target < 150 MB)"
                )
            finally:
                proc.terminate()
                await proc.wait()
            await operator.close()
        finally:
            await synapse.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pings", type=int, default=200)
    parser.add_argument("--rooms", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.pings, args.rooms))
