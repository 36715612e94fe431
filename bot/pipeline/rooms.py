"""Room workers: each room's messages in order, rooms side by side, never one behind another.

The sync loop only receives and queues. A room's commands must run in the order they were
sent (`!issue` then `!issues` must see the new issue), but a slow model answer in one room
must not hold a `!ping` or a crisis reply in another. So every room has its own queue and at
most one worker task, started when work arrives and ended when the queue is empty (fifty
quiet rooms cost nothing). A semaphore bounds how many rooms do work at once, so a burst
across many rooms cannot open unbounded model or Gitea calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from fleetcore.log import fields

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class RoomWorkers:
    def __init__(self, max_concurrent: int = 8) -> None:
        self._queues: dict[str, deque[tuple[str, Job]]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(max_concurrent)
        self._closing = False
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, room_id: str, label: str, job: Job) -> None:
        """Queue `job` behind the room's earlier work; never waits."""
        if self._closing:
            raise RuntimeError("room workers are draining: no new work")
        self._queues.setdefault(room_id, deque()).append((label, job))
        self._idle.clear()
        if room_id not in self._workers:
            self._workers[room_id] = asyncio.create_task(self._work(room_id))

    def pending(self) -> int:
        return sum(len(q) for q in self._queues.values()) + len(self._workers)

    async def _work(self, room_id: str) -> None:
        queue = self._queues[room_id]
        try:
            while queue:
                label, job = queue[0]
                async with self._slots:
                    try:
                        await job()
                    except Exception:
                        log.exception("room_job_failed", extra=fields(room=room_id, job=label))
                queue.popleft()
        finally:
            del self._workers[room_id]
            if not queue:
                self._queues.pop(room_id, None)
            if not self._workers:
                self._idle.set()

    async def drain(self, timeout: float) -> bool:
        """Stop taking work and let queued work finish; True when all of it did in time.

        What does not finish in time is cancelled; its events were never marked handled, so
        the next start takes them up again from the inbox.
        """
        self._closing = True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            workers = list(self._workers.values())
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            return False
