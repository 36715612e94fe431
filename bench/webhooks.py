"""Forge events into rooms: a burst of Gitea deliveries, and how many room messages it costs.

Replays the real deliveries in ../shared/gitea/webhooks (re-signed) at the real endpoint:
N events spread evenly over S seconds, with the default batching window. Prints the room
messages sent, the time from the last delivery to the last notice, and per-delivery
handling time (HMAC check + outbox write + 200).

    .venv/bin/python bench/webhooks.py [--events 50] [--seconds 10] [--window 2]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bot.forge.webhooks import Dispatcher, Outbox, WebhookReceiver, WebhookServer
from fleetcore.projects import Project, ProjectStore

SHARED = Path(__file__).resolve().parents[2] / "shared" / "gitea" / "webhooks"
SECRET = "bench-secret"


async def main(events: int, seconds: float, window: float) -> None:
    deliveries = json.loads((SHARED / "deliveries.json").read_text())["deliveries"]
    bodies = [((SHARED / d["file"]).read_bytes(), d["headers"]) for d in deliveries]
    sent: list[tuple[float, str]] = []
    all_in = asyncio.Event()

    async def send(room: str, text: str, txn_id: str) -> bool:
        sent.append((time.perf_counter(), text))
        n = sum(int(t.split()[0]) if "forge events in" in t.splitlines()[0] else 1 for _, t in sent)
        if n >= events:
            all_in.set()
        return True

    with tempfile.TemporaryDirectory() as tmp:
        projects = ProjectStore(
            Path(tmp) / "p.json", {"ex": Project("ex", "example/example", "!room:bench")}
        )
        outbox = Outbox(Path(tmp) / "hooks.db")
        server = WebhookServer(
            WebhookReceiver(SECRET, projects, outbox, Dispatcher(outbox, send, window)),
            "127.0.0.1",
            0,
        )
        await server.start()
        handling: list[float] = []
        async with httpx.AsyncClient() as http:
            t0 = time.perf_counter()
            for i in range(events):
                body, headers = bodies[i % len(bodies)]
                h = dict(headers)
                h["X-Gitea-Signature"] = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                h["X-Gitea-Delivery"] = str(uuid.uuid4())
                due = t0 + i * seconds / max(events - 1, 1)
                await asyncio.sleep(max(0.0, due - time.perf_counter()))  # pacing the load
                s = time.perf_counter()
                r = await http.post(server.url, content=body, headers=h)
                handling.append(time.perf_counter() - s)
                assert r.status_code == 200, r.text
            last = time.perf_counter()
            await asyncio.wait_for(all_in.wait(), seconds + 30)
        await server.stop()
        outbox.close()
    handling.sort()
    print(f"{events} deliveries over {seconds:.0f} s, batching window {window:.1f} s")
    print(f"  room messages sent       {len(sent)}")
    print(f"  last delivery -> notice  {(sent[-1][0] - last) * 1000:.0f} ms")
    print(
        f"  handling per delivery    median {statistics.median(handling) * 1000:.2f} ms, "
        f"p99 {handling[int(0.99 * (len(handling) - 1))] * 1000:.2f} ms "
        "(HMAC, parse, outbox write, 200; over loopback HTTP)"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--window", type=float, default=2.0)
    a = ap.parse_args()
    asyncio.run(main(a.events, a.seconds, a.window))
