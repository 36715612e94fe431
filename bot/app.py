"""Assembles the bot from its configuration and runs it.

Areas that are not configured (NATS, Gitea, models) simply contribute nothing: `!status`
says `not configured` and their commands are absent from `!help`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress

from bot.burn.service import BurnService
from bot.burn.store import BurnStore
from bot.commands import CommandRegistry, builtin, review, trust
from bot.commands import burn as burn_commands
from bot.converse import Conversation
from bot.crosssign.api import ensure_identity
from bot.crosssign.operators import OperatorTrust
from bot.crosssign.verify import IdentityPins
from bot.forge.area import ForgeArea
from bot.holds import HoldStore, holds_path
from bot.matrix.client import MatrixShell
from bot.matrix.state import BotState
from bot.pipeline.flow import Pipeline
from bot.pipeline.guard import CrisisGuard
from bot.pipeline.message import Reply
from bot.pipeline.report import Reporter, txn_id
from bot.pipeline.rooms import RoomWorkers
from bot.services import BotServices, Soul
from fleetcore.config import FleetConfig, TrustPolicy
from fleetcore.log import fields
from fleetcore.metrics import Metrics
from fleetcore.models.chain import Completion, FallbackChain
from fleetcore.safety.modelgate import readiness_path
from fleetcore.safety.modeltest import ReadinessStore

log = logging.getLogger(__name__)

# Rooms doing work at once (model calls, Gitea calls); more wait their turn, in order.
MAX_CONCURRENT_ROOMS = 8
DRAIN_TIMEOUT_S = 10.0


class BotApp:
    def __init__(self, cfg: FleetConfig) -> None:
        self.cfg = cfg
        cfg.bot_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.state = BotState(cfg.bot_dir / "bot.db")
        self.matrix = MatrixShell(cfg, self.state)
        self.soul = Soul.load(cfg.soul)
        self.holds = HoldStore(holds_path(cfg))
        self.services = BotServices(config=cfg, soul=self.soul, matrix=self.matrix)
        self.registry = CommandRegistry()
        builtin.register(self.registry)
        review.register(self.registry, self.holds)
        self.reporter = Reporter(self.matrix.send, cfg.operators_room, self.matrix.send_reaching)
        self.metrics = Metrics()
        self.rooms = RoomWorkers(max_concurrent=MAX_CONCURRENT_ROOMS)
        self._screening = ThreadPoolExecutor(max_workers=2, thread_name_prefix="screen")
        self.pipeline: Pipeline | None = None
        self.identity: OperatorTrust | None = None
        self.chain: FallbackChain | None = None
        self.identity_result: object | None = None
        self.forge: ForgeArea | None = None
        self.burns: BurnService | None = None
        if cfg.gitea is not None:
            self.forge = ForgeArea(cfg, self.matrix)
            self.forge.register(self.registry, self.services)
        self._closers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.matrix.start()
        self.services.health["homeserver"] = self._homeserver_health
        self.matrix.on_new_device = self._announce_new_device
        await self._cross_signing()
        conversation = self._models()
        if self.forge is not None:
            await self.forge.start()
        await self._burns()
        guard = CrisisGuard(
            self.cfg.safety, self.holds, self.matrix.homeserver_name(), self._screening
        )
        self.pipeline = Pipeline(
            guard,
            frozenset(self.cfg.operators),
            self.registry,
            self.services,
            self.reporter,
            self.rooms,
            conversation,
            self.state.finish,
            self.metrics,
        )
        log.info(
            "bot_started",
            extra=fields(
                user=self.cfg.matrix.user_id,
                device=self.matrix.device_id,
                soul_sha256=self.soul.sha256,
            ),
        )

    async def run(self) -> None:
        assert self.pipeline is not None, "start() first"
        await self.matrix.run(self.pipeline.submit, self.pipeline.submit_undecryptable)

    async def close(self) -> None:
        self.matrix.stop()
        # Queued work gets a moment to finish; what does not is taken up again on start.
        await self.rooms.drain(timeout=DRAIN_TIMEOUT_S)
        self._screening.shutdown(wait=False, cancel_futures=True)
        if self.burns is not None:
            await self.burns.close()
            self.burns.store.close()
        if self.forge is not None:
            await self.forge.close()
        await self.matrix.close()
        if self.chain is not None:
            await self.chain.aclose()
        self.holds.close()
        self.state.close()

    def _models(self) -> Conversation | None:
        """With providers configured: `!status` shows them, and operators can chat."""
        cfg = self.cfg
        if not cfg.fallback_providers:
            return None
        self.chain = FallbackChain.from_config(
            cfg.model, cfg.fallback_providers, cfg.chain, self.soul.text
        )
        chain = self.chain
        readiness = ReadinessStore(readiness_path(cfg))

        async def section() -> str:
            ready = readiness.status()
            text = chain.status_text()
            untested = [n for n in chain.names if n not in ready]
            failed = [n for n, ok in ready.items() if not ok and n in chain.names]
            if untested or failed:
                text += "\nNot ready for conversation (run `fleet safety-test`): " + ", ".join(
                    [f"{n} (untested)" for n in untested] + [f"{n} (failed)" for n in failed]
                )
            return text

        async def complete(messages: list[dict[str, str]], sensitive: bool) -> Completion:
            return await chain.complete(messages, sensitive=sensitive, allow=readiness.is_ready)

        self.services.status_sections.append(section)
        forge = self.forge
        return Conversation(
            complete,
            cfg.safety,
            forge.is_sensitive_room if forge is not None else (lambda room: False),
        )

    async def _burns(self) -> None:
        """Burns need the bus and the forge; without either, `!burn` is not offered."""
        cfg = self.cfg
        if cfg.bus is None or self.forge is None or cfg.gitea is None:
            return
        matrix = self.matrix

        async def send(room: str, text: str, txn: str | None) -> str | None:
            return await matrix.send(Reply(room, text), txn_id=txn)

        async def alert(text: str, room: str) -> object:
            return await self.reporter.alert_operators(text, room)

        self.burns = await BurnService.open(
            cfg.bus,
            cfg.burn,
            BurnStore(cfg.bot_dir / "burns.db"),
            self.forge.client,
            cfg.gitea.url,
            send,
            matrix.edit,
            alert,
        )
        burn_commands.register(self.registry, self.burns, self.forge.projects)
        self.services.health["nats"] = self.burns.health
        self.services.status_sections.append(self.burns.status_text)
        self.services.extras["burns"] = self.burns

    async def _cross_signing(self) -> None:
        """Sign our device with our own identity, and trust operators by theirs."""
        cfg, nio = self.cfg, self.matrix.nio
        password = cfg.matrix.password.get() if cfg.matrix.password is not None else None
        try:
            result = await ensure_identity(
                cfg.matrix.homeserver,
                nio.access_token,
                nio.user_id,
                nio.device_id,
                cfg.bot_dir,
                password,
            )
        except Exception as exc:  # the bot still works; Element will show it unverified
            log.error("cross_signing_failed", extra=fields(error=f"{type(exc).__name__}: {exc}"))
        else:
            self.identity_result = result
            if result.problem:
                log.error("cross_signing_problem", extra=fields(problem=result.problem))
            else:
                log.info("cross_signing_ok", extra=fields(master=result.master_fingerprint))
        policy = cfg.matrix.trust.policy
        if policy is TrustPolicy.TOFU:
            return
        pins = IdentityPins.load(cfg.bot_dir / "identity_pins.json")
        for user, key in cfg.matrix.trust.pinned_identities.items():
            pins.pin(user, key)
        self.identity = OperatorTrust(
            cfg.matrix.homeserver,
            nio.access_token,
            pins,
            allow_unsigned_devices=cfg.matrix.trust.allow_unsigned_devices,
            pin_on_first_sight=policy is TrustPolicy.IDENTITY_TOFU,
        )
        self.matrix.identity_trust = self.identity
        self.matrix.on_identity_notice = self._identity_notice
        trust.register(self.registry, self.identity, self.matrix.apply_trust)

    async def _identity_notice(self, text: str) -> None:
        rooms = [self.cfg.operators_room] if self.cfg.operators_room else self.matrix.joined_rooms()
        for room_id in rooms:
            if room_id is not None:
                # One notice per identity change and room, even when re-sent after a crash.
                await self.matrix.send(
                    Reply(room_id, text), txn_id=txn_id("identity", f"{room_id}\0{text}")
                )

    async def _homeserver_health(self) -> tuple[bool, str]:
        try:
            resp = await asyncio.wait_for(self.matrix.nio.whoami(), 5)
        except (TimeoutError, OSError) as exc:
            return False, type(exc).__name__
        ok = getattr(resp, "user_id", None) == self.cfg.matrix.user_id
        return ok, "reachable" if ok else str(resp)

    async def _announce_new_device(self, user_id: str, device_id: str, fp: str) -> None:
        text = (
            f"Operator {user_id} has a new device {device_id} (key {fp}). It is trusted under "
            f"the `{self.cfg.matrix.trust.policy.value}` policy; if this wasn't you, tell the "
            "other operators now."
        )
        rooms = (
            [self.cfg.operators_room]
            if self.cfg.operators_room
            else [rid for rid, room in self.matrix.nio.rooms.items() if user_id in room.users]
        )
        for room_id in rooms:
            if room_id is not None:
                about = f"{room_id}\0{user_id}\0{device_id}\0{fp}"
                await self.matrix.send(Reply(room_id, text), txn_id=txn_id("device", about))


async def run_forever(cfg: FleetConfig) -> None:
    """`fleet bot`: run until SIGINT/SIGTERM, then stop cleanly."""
    app = BotApp(cfg)
    await app.start()
    loop = asyncio.get_running_loop()
    runner = asyncio.create_task(app.run())
    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError):
            loop.add_signal_handler(sig, runner.cancel)
    try:
        await runner
    except asyncio.CancelledError:
        pass
    finally:
        await app.close()
