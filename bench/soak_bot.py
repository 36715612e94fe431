"""The bot for `bench/soak.py`, alone in its process: its resident memory is the bot's.

It imports what `fleet bot` imports and nothing of the bench (the bench's own imports,
test doubles included, would add some 50 MB). It runs the bot as `fleet up` does (BotRunner)
with the config given, subscribes to the bot's own metrics, and talks over its pipes: it
writes `ready` once the bot has synced; to each `report` line on stdin it answers one JSON
line, what the bot measured since the last report (`bot.processing_s`, `bot.loop_lag_s`, in
seconds); stdin closed stops the bot. The bot's log (warnings and up) goes to stderr.

    .venv/bin/python bench/soak_bot.py CONFIG
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

from fleet.local.botrunner import BotRunner
from fleetcore import log
from fleetcore.config import load_config

MEASURED = ("bot.processing_s", "bot.loop_lag_s")


async def main(config_path: Path) -> None:
    cfg = load_config(config_path)
    log.setup("warning")  # info is a line per command
    runner = BotRunner(cfg)
    app = await runner.start(timeout=180)
    measured: dict[str, list[float]] = {name: [] for name in MEASURED}

    def observe(name: str, value: float) -> None:
        if name in measured:
            measured[name].append(round(value, 6))

    app.metrics.subscribe(observe)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    print("ready", flush=True)
    try:
        while (await stdin.readline()).strip() == b"report":
            print(json.dumps(measured), flush=True)
            for values in measured.values():
                values.clear()
    finally:
        # Closing the bus on purpose is not news (as bench/burn.py's quiet_shutdown).
        logging.getLogger("fleetcore.bus.connect").setLevel(logging.ERROR)
        await runner.stop()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
