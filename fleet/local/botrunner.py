"""Run a BotApp in-process as a task, with clean stop and restart: tests, bench, demo."""

from __future__ import annotations

import asyncio
import contextlib

from bot.app import BotApp
from fleetcore.config import FleetConfig


class BotRunner:
    def __init__(self, cfg: FleetConfig) -> None:
        self.cfg = cfg
        self.app: BotApp | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 60.0) -> BotApp:
        self.app = await BotApp.open(self.cfg)
        self._task = asyncio.create_task(self.app.run())
        ready = asyncio.create_task(self.app.matrix.ready.wait())
        done, _ = await asyncio.wait(
            {ready, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if self._task in done:
            ready.cancel()
            self._task.result()  # raises what killed it
            raise RuntimeError("bot stopped before its first sync")
        if ready not in done:
            ready.cancel()
            raise TimeoutError("bot did not finish its first sync in time")
        return self.app

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.app is not None:
            await self.app.close()
            self.app = None

    async def restart(self) -> BotApp:
        await self.stop()
        return await self.start()

    async def __aenter__(self) -> BotApp:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
