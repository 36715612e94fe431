"""Head of line: how long room B waits while room A's model answer is held for 15 s.

A fake model holds room A's question open for `--hold` seconds. Meanwhile the operator sends
`!ping` in room B `--pings` times and one crisis line, and the bench prints their round
trips next to plain `!ping` round trips with nothing held. Before the redesign, B waited for
A's model (the sync loop awaited every handler in turn).

    .venv/bin/python bench/head_of_line.py [--pings 20] [--hold 15]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # fleettest
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the round-trip bench's config

from roundtrip import bench_config

import fleettest.models_fake as fakes
from fleet.local.botrunner import BotRunner
from fleet.local.operator import OperatorClient
from fleet.local.synapse import SynapseServer
from fleetcore.safety.modelgate import readiness_path
from fleetcore.safety.modeltest import ReadinessStore


async def timed_ask(op: OperatorClient, room: str, text: str) -> float:
    t0 = time.perf_counter()
    await op.ask(room, text, timeout=60)
    return time.perf_counter() - t0


async def main(pings: int, hold: float) -> None:
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        synapse = SynapseServer(tmp / "synapse")
        await synapse.start()
        try:
            async with fakes.FakeProvider("openai", fakes.hang()) as model:
                bot = await synapse.register("holbot")
                user = await synapse.register("holop")
                cfg = bench_config(
                    tmp,
                    synapse.url,
                    bot,
                    user.user_id,
                    fallback_providers=[
                        {"provider": "fake", "model": "fake-1", "base_url": model.base_url}
                    ],
                    chain={"first_byte_timeout_s": hold + 60, "total_timeout_s": hold + 90},
                )
                runner = BotRunner(cfg)
                await runner.start()
                ReadinessStore(readiness_path(cfg)).set("fake", True)
                op = OperatorClient(synapse.url, user.user_id, user.password, tmp / "op")
                await op.login()
                room_a = await op.create_encrypted_room("slow", [bot.user_id])
                room_b = await op.create_encrypted_room("quick", [bot.user_id])
                await op.wait_joined(room_a, bot.user_id)
                await op.wait_joined(room_b, bot.user_id)
                await op.ask(room_b, "!ping")  # warm up: Olm sessions, room keys
                quiet = [await timed_ask(op, room_b, "!ping") for _ in range(pings)]

                question = await op.send_text(room_a, "what should we work on next?")
                await model.wait_requests(1, timeout=30)
                held_since = time.perf_counter()
                busy = [await timed_ask(op, room_b, "!ping") for _ in range(pings)]
                crisis = await timed_ask(op, room_b, "i want to end my life tonight")
                still_held = not op.replies_to(question)
                asyncio.get_running_loop().call_later(
                    max(0.0, hold - (time.perf_counter() - held_since)), model.release
                )
                await op.wait_reply(question, timeout=hold + 60)
                await op.close()
                await runner.stop()
        finally:
            await synapse.stop()

    def line(name: str, values: list[float]) -> str:
        return (
            f"{name:<34} median {statistics.median(values) * 1000:7.1f} ms"
            f"   max {max(values) * 1000:7.1f} ms"
        )

    print(f"room A's model answer held for {hold:.0f} s; {pings} pings in room B each way")
    print(line("!ping in B, nothing held", quiet))
    print(line("!ping in B, A's model call held", busy))
    print(f"{'crisis reply in B, A held':<34} {crisis * 1000:7.1f} ms")
    print(f"all of B answered while A was still held: {still_held}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--pings", type=int, default=20)
    parser.add_argument("--hold", type=float, default=15.0)
    args = parser.parse_args()
    asyncio.run(main(args.pings, args.hold))
