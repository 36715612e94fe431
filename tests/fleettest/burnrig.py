"""A burn on real parts, minus the homeserver: nats-server, the Gitea stand-in, a fake model
server, in-process wolves, and the bot's BurnService writing into a recording room.

Used by the burn tests, `bench/burn.py` and `fleet demo`. The recording room behaves like
a homeserver where it matters: a repeated transaction id returns the first event instead
of posting again, so "reported exactly once" is checked the way Synapse would enforce it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agents.triage import Triager
from agents.wolf import Fleetmates, HourlyBudget, Wolf
from bot.burn.service import BurnService
from bot.burn.store import BurnStore
from fleetcore.bus.config import BusConfig
from fleetcore.config.burn import BurnConfig
from fleetcore.forge.client import GiteaClient
from fleetcore.identity.nostr import NostrKey
from fleetcore.models.chain import Completion, FallbackChain
from fleetcore.models.config import ChainConfig, ProviderConfig
from fleetcore.projects import Project
from fleettest.gitea_schema import SwaggerValidator
from fleettest.gitea_standin import GiteaStandin
from fleettest.models_fake import FakeProvider, ok, triage_reply
from fleettest.protocol_v1 import WolfV1
from fleettest.wait import wait_until

ROOM = "!burnroom:test"
OWNER, REPO = "acme", "web"


@dataclass
class RecordingRoom:
    """Room messages and edits as a homeserver would keep them (txn ids deduplicate)."""

    messages: list[tuple[str, str]] = field(default_factory=list)  # (event id, text)
    edits: dict[str, list[str]] = field(default_factory=dict)
    by_txn: dict[str, str] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def send(self, room: str, text: str, txn: str | None) -> str | None:
        if txn is not None and txn in self.by_txn:
            return self.by_txn[txn]
        event = f"$ev{next(self._ids)}"
        self.messages.append((event, text))
        if txn is not None:
            self.by_txn[txn] = event
        self.changed.set()
        return event

    async def edit(self, room: str, event: str, text: str) -> str | None:
        self.edits.setdefault(event, []).append(text)
        self.changed.set()
        return f"$edit{next(self._ids)}"

    def current(self, event: str) -> str:
        edits = self.edits.get(event)
        if edits:
            return edits[-1]
        return next(text for eid, text in self.messages if eid == event)


class BurnRig:
    def __init__(
        self,
        nats_url: str,
        state_dir: Path,
        *,
        issues: int = 30,
        tier: str = "wolves",
        bus: BusConfig | None = None,
        burn: BurnConfig | None = None,
        validate: bool = True,
        wolf_bus: Callable[[str], BusConfig] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.issues = issues
        self.tier = tier
        self.bus = bus or BusConfig(
            servers=[nats_url],
            ack_wait_s=3,
            heartbeat_s=0.3,
            heartbeat_ttl_s=1.5,
            reconnect_wait_s=0.2,
        )
        # Under auth each wolf connects as its own NKey user: its own bus config.
        self._wolf_bus = wolf_bus
        self.burn_cfg = burn or BurnConfig(edit_interval_s=0.3, digest_interval_s=5)
        self.validate = validate
        self.gitea = GiteaStandin(validator=None if validate else RoutingOnly())
        self.model = FakeProvider("openai", ok(triage_reply))
        self.room = RecordingRoom()
        self.alerts: list[str] = []
        self.wolves: dict[str, tuple[Wolf | WolfV1, asyncio.Task[None], GiteaClient]] = {}
        self.service: BurnService | None = None
        # Each wolf's Nostr key, as `fleet agent add` would register it: the bot reports
        # only results signed by the key registered for their wolf.
        self.keys: dict[str, NostrKey] = {}
        self._bot_up = asyncio.Event()  # set while a BurnService runs
        self.token = ""
        self.chain: FallbackChain | None = None
        self.project = Project("web", f"{OWNER}/{REPO}", ROOM)

    async def __aenter__(self) -> BurnRig:
        await self.gitea.start()
        self.token = self.gitea.add_user("fleet", admin=True)
        self.gitea.add_repo(OWNER, REPO)
        self.gitea.add_collaborator(OWNER, REPO, "fleet", "admin")
        for n in range(1, self.issues + 1):
            self.gitea.add_issue(
                OWNER,
                REPO,
                f"Crash number {n} when saving a draft",
                f"Saving draft {n} throws a TypeError in the editor.",
            )
        await self.model.__aenter__()
        self.chain = fake_chain(self.model.base_url)
        await self.start_bot()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for name in list(self.wolves):
            await self.stop_wolf(name)
        await self.stop_bot()
        if self.chain is not None:
            await self.chain.aclose()
        await self.model.__aexit__()
        await self.gitea.stop()

    def client(self) -> GiteaClient:
        return GiteaClient(self.gitea.url, self.token, retries=3, backoff_s=0.05)

    # -- the bot -------------------------------------------------------------------------

    async def start_bot(self) -> BurnService:
        async def alert(text: str, room: str) -> object:
            self.alerts.append(text)
            return None

        store = BurnStore(self.state_dir / "burns.db")
        self.service = await BurnService.open(
            self.bus,
            self.burn_cfg,
            store,
            self.client(),
            self.gitea.url,
            self.room.send,
            self.room.edit,
            alert,
            npub_of=self.npub_of,
        )
        self._bot_up.set()
        return self.service

    async def stop_bot(self) -> None:
        self._bot_up.clear()
        if self.service is not None:
            await self.service.close()
            await self.service.gitea.aclose()
            self.service.store.close()
            self.service = None

    # -- wolves --------------------------------------------------------------------------

    def triager(self, name: str, gitea: GiteaClient, mates: Fleetmates | None = None) -> Triager:
        """A wolf's triager; without `mates` (no wolf around it) every claimer looks alive."""
        assert self.chain is not None
        return rig_triager(name, gitea, self.chain, self.bus, mates)

    def npub_of(self, name: str) -> str | None:
        key = self.keys.get(name)
        return None if key is None else key.npub

    def register(self, name: str) -> NostrKey:
        """The wolf's key, made the first time (a restarted wolf keeps its identity)."""
        return self.keys.setdefault(name, NostrKey.generate())

    async def start_wolf(self, name: str, concurrency: int = 2) -> Wolf:
        gitea = self.client()
        key = self.register(name)
        bus = self._wolf_bus(name) if self._wolf_bus else self.bus
        wolf = rig_wolf(name, self.tier, bus, gitea, self.chain, key, concurrency)
        task = asyncio.create_task(wolf.run(), name=f"wolf-{name}")
        self.wolves[name] = (wolf, task, gitea)
        return wolf

    async def start_wolf_v1(self, name: str) -> WolfV1:
        """A wolf that speaks the first (version-1) bus protocol: see fleettest.protocol_v1.

        It is registered like any wolf, but that version never signed its results."""
        gitea = self.client()
        self.register(name)
        wolf = WolfV1(name, self.tier, self.bus, self.triager(name, gitea))
        task = asyncio.create_task(wolf.run(), name=f"wolf-v1-{name}")
        self.wolves[name] = (wolf, task, gitea)
        return wolf

    async def stop_wolf(self, name: str) -> None:
        wolf, task, gitea = self.wolves.pop(name)
        wolf.stop()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(task, 15)
        await gitea.aclose()

    # -- burns ---------------------------------------------------------------------------

    async def burn(self, limit: int | None = None) -> str:
        assert self.service is not None
        return await self.service.begin(
            self.project, ROOM, limit=limit or self.issues, label=None, tier=self.tier
        )

    async def wait_finished(self, burn_id: str, timeout: float = 60.0) -> float:
        """Until the store says the burn finished; returns the seconds it took.

        The bot marks a burn finished in the same step as its last room message or edit;
        the 1 s re-check covers a bot restarted in between (its store is read again).
        """
        t0 = time.monotonic()

        def finished() -> bool:
            service = self.service
            row = service.store.burn(burn_id) if service is not None else None
            return row is not None and row.finished is not None

        await wait_until(
            finished,
            changed=self.room.changed,
            poll_s=1.0,
            timeout=timeout,
            what=f"burn {burn_id} finished",
        )
        return time.monotonic() - t0

    async def wait_until(self, predicate: Callable[[], object], timeout: float = 30.0) -> None:
        """A condition over the stand-in's or the model's state: they signal nothing, so
        it is re-checked every 50 ms as well as at every room change."""
        await wait_until(predicate, changed=self.room.changed, poll_s=0.05, timeout=timeout)

    def triage_comments(self, number: int) -> list[str]:
        return [
            c["body"]
            for c in self.gitea.comments(OWNER, REPO, number)
            if "fleet-task:" in c["body"]
        ]


def fake_chain(model_url: str) -> FallbackChain:
    """The wolves' model chain: the one fake provider at `model_url`."""
    provider = ProviderConfig(provider="fake", model="fake-1", base_url=model_url)
    # A provider that answered 503 cools for 2 s here, not 30: the rig's outages end when
    # the test says so, and nothing is measured by waiting them out.
    chain_cfg = ChainConfig(short_cooldown_s=2.0)
    return FallbackChain([provider], chain_cfg, "You are Hermes.", primary="fake")


def rig_triager(
    name: str,
    gitea: GiteaClient,
    chain: FallbackChain,
    bus: BusConfig,
    mates: Fleetmates | None = None,
) -> Triager:
    """A rig wolf's triager; without `mates` (no wolf around it) every claimer looks alive."""

    async def complete(messages: list[dict[str, str]], sensitive: bool) -> Completion:
        return await chain.complete(messages, sensitive=sensitive, deadline_s=30)

    async def unknown(_name: str) -> bool:
        return True

    return Triager(
        name,
        gitea,
        complete,
        mates.alive if mates else unknown,
        HourlyBudget(100_000),
        stale_after_s=bus.heartbeat_ttl_s,
        started_at=mates.started_at if mates else None,
        working_on=mates.working_on if mates else None,
        announce=mates.announce if mates else None,
        # A provider outage in a test ends when the test says so: retry soon after.
        models_retry_s=2.0,
    )


def rig_wolf(
    name: str,
    tier: str,
    bus: BusConfig,
    gitea: GiteaClient,
    chain: FallbackChain | None,
    key: NostrKey,
    concurrency: int,
) -> Wolf:
    """A wolf as the rig runs it, in its process or another (`wolf_process`)."""
    assert chain is not None
    return Wolf(
        name,
        tier,
        bus,
        lambda mates: rig_triager(name, gitea, chain, bus, mates),
        "fake-1",
        concurrency,
        signer=key,
    )


async def wolf_process(
    name: str,
    tier: str,
    bus: BusConfig,
    gitea_url: str,
    token: str,
    model_url: str,
    nsec: str,
    concurrency: int,
    on_stop: Callable[[], object] | None = None,
) -> None:
    """A rig wolf in a process of its own (benchmarks), until SIGTERM (`on_stop` is
    called then). Its registered key comes as `nsec` (over a pipe, never argv): the bot
    reports only signed results."""
    gitea = GiteaClient(gitea_url, token, retries=3, backoff_s=0.05)
    chain = fake_chain(model_url)
    wolf = rig_wolf(name, tier, bus, gitea, chain, NostrKey.from_nsec(nsec), concurrency)

    def stop() -> None:
        if on_stop is not None:
            on_stop()
        wolf.stop()

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop)
    try:
        await wolf.run()
    finally:
        await gitea.aclose()
        await chain.aclose()


def stop_process(proc: mp.process.BaseProcess) -> None:
    """SIGTERM, 20 s to finish, then SIGKILL."""
    if proc.pid is not None and proc.is_alive():
        os.kill(proc.pid, signal.SIGTERM)
    proc.join(20)
    if proc.is_alive():
        proc.kill()
        proc.join()


class RoutingOnly(SwaggerValidator):
    """For benchmarks: the swagger still routes requests, the schema checks are skipped.

    What is measured is then the fleet, not the stand-in's validation (tests keep it on).
    """

    def validate_request(self, *a: Any, **k: Any) -> list[str]:
        return []

    def validate_response(self, *a: Any, **k: Any) -> list[str]:
        return []

    def validate_definition(self, *a: Any, **k: Any) -> list[str]:
        return []


def wolf_config(rig: BurnRig, tmp: Path, model_url: str, provider: str = "slow") -> Path:
    """A `fleet wolf` config for a wolf process on `rig`'s bus and forge, one model at
    `model_url` (crash and hang tests run wolves as real processes they can kill)."""
    token = tmp / "gitea-token"
    token.write_text(rig.token)
    token.chmod(0o600)
    cfg = {
        "state_dir": str(tmp / "wolf-state"),
        "soul": str(Path(__file__).resolve().parents[2] / "SOUL.md"),
        "matrix": {
            "homeserver": "http://127.0.0.1:9",
            "user_id": "@wolf:localhost",
            "password": {"env": "UNUSED_BY_WOLVES"},
        },
        "operators": ["@op:localhost"],
        "gitea": {"url": rig.gitea.url, "token": {"file": str(token)}, "retries": 3},
        "projects": {"web": {"repo": f"{OWNER}/{REPO}"}},
        "bus": rig.bus.model_dump(mode="json"),
        "model": {"default": "fake-1", "provider": provider},
        "fallback_providers": [{"provider": provider, "model": "fake-1", "base_url": model_url}],
        "wolves": {"concurrency": 1},
    }
    path = tmp / "wolf.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path
