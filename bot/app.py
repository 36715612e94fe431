"""Assembles the bot from its configuration and runs it.

Areas that are not configured (NATS, Gitea, models) simply contribute nothing: `!status`
says `not configured` and their commands are absent from `!help`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, suppress
from functools import partial

from nio import AsyncClient

from bot.burn.service import BurnService
from bot.burn.store import BurnStore
from bot.commands import CommandRegistry, builtin, review, trust
from bot.commands import burn as burn_commands
from bot.converse import Conversation
from bot.crosssign.api import IdentityResult, ensure_identity
from bot.crosssign.operators import OperatorTrust
from bot.crosssign.verify import IdentityPins
from bot.forge.area import ForgeArea
from bot.holds import HoldStore, holds_path
from bot.matrix.client import MatrixShell, login
from bot.matrix.state import BotState
from bot.pipeline.flow import Pipeline
from bot.pipeline.guard import CrisisGuard
from bot.pipeline.report import Reporter
from bot.pipeline.rooms import RoomWorkers
from bot.services import BotServices, Soul
from fleetcore.config import FleetConfig, TrustPolicy
from fleetcore.identity.agents import registered_npub
from fleetcore.log import fields
from fleetcore.metrics import Metrics, watch_loop_lag
from fleetcore.models.chain import Completion, FallbackChain
from fleetcore.safety.modelgate import readiness_path
from fleetcore.safety.modeltest import ReadinessStore

log = logging.getLogger(__name__)

# Rooms doing work at once (model calls, Gitea calls); more wait their turn, in order.
MAX_CONCURRENT_ROOMS = 8
DRAIN_TIMEOUT_S = 10.0


class BotApp:
    """A running bot's parts, built whole by `open` (the bot's one composition root)."""

    def __init__(
        self,
        cfg: FleetConfig,
        matrix: MatrixShell,
        pipeline: Pipeline,
        rooms: RoomWorkers,
        metrics: Metrics,
        forge: ForgeArea | None,
        burns: BurnService | None,
        identity_result: IdentityResult | None,
        resources: AsyncExitStack,
    ) -> None:
        self.cfg = cfg
        self.matrix = matrix
        self.pipeline = pipeline
        self.rooms = rooms
        self.metrics = metrics
        self.forge = forge  # None: no `gitea:` configured
        self.burns = burns  # None: no bus, or no forge
        self.identity_result = identity_result  # None: cross-signing failed (logged)
        # Closed last to first by `close`: what `open` built, in the order it built it.
        self._resources = resources

    @classmethod
    async def open(cls, cfg: FleetConfig) -> BotApp:
        """Log in, then build every part with what it needs; on failure close what was built."""
        async with AsyncExitStack() as stack:
            cfg.bot_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            state = BotState(cfg.bot_dir / "bot.db")
            stack.callback(state.close)
            state.prune_handled()  # a month of handled events and sent transaction ids
            holds = HoldStore(holds_path(cfg))
            stack.callback(holds.close)
            soul = Soul.load(cfg.soul)
            metrics = Metrics()
            rooms = RoomWorkers(max_concurrent=MAX_CONCURRENT_ROOMS)
            screening = ThreadPoolExecutor(max_workers=2, thread_name_prefix="screen")
            stack.callback(screening.shutdown, wait=False, cancel_futures=True)
            client = await login(cfg)
            stack.push_async_callback(client.close)
            identity_result = await _cross_signing(cfg, client)
            identity = _operator_trust(cfg, client)
            matrix = MatrixShell(cfg, state, client, identity, metrics)
            stack.push_async_callback(matrix.close)
            services = BotServices(
                config=cfg, soul=soul, matrix=matrix, health={"homeserver": matrix.health}
            )
            registry = CommandRegistry()
            builtin.register(registry)
            review.register(registry, holds)
            if identity is not None:
                trust.register(registry, identity, matrix.decide)
            forge = None
            if cfg.gitea is not None:
                forge = await ForgeArea.open(cfg, matrix)
                stack.push_async_callback(forge.close)
                forge.register(registry, services)
            conversation, chain = _models(cfg, soul, services, forge)
            if chain is not None:
                stack.push_async_callback(chain.aclose)
            reporter = Reporter(matrix.sender.reply, cfg.operators_room)
            burns = await _burns(cfg, matrix, reporter, forge, registry, services, stack)
            guard = CrisisGuard(cfg.safety, holds, matrix.homeserver_name(), screening)
            pipeline = Pipeline(
                guard,
                frozenset(cfg.operators),
                registry,
                services,
                reporter,
                rooms,
                conversation,
                state.finish,
                metrics,
            )
            app = cls(
                cfg,
                matrix,
                pipeline,
                rooms,
                metrics,
                forge,
                burns,
                identity_result,
                stack.pop_all(),
            )
        log.info(
            "bot_started",
            extra=fields(user=cfg.matrix.user_id, device=matrix.device_id, soul_sha256=soul.sha256),
        )
        return app

    async def run(self) -> None:
        # The bot's own event-loop lag, for whoever subscribes to `metrics` (bench/soak.py).
        lag = asyncio.create_task(watch_loop_lag(self.metrics, "bot.loop_lag_s"))
        try:
            await self.matrix.run(self.pipeline.submit, self.pipeline.submit_undecryptable)
        finally:
            lag.cancel()
            with suppress(asyncio.CancelledError):
                await lag

    async def close(self) -> None:
        self.matrix.stop()
        # Queued work gets a moment to finish; what does not is taken up again on start.
        await self.rooms.drain(timeout=DRAIN_TIMEOUT_S)
        await self._resources.aclose()


def _models(
    cfg: FleetConfig, soul: Soul, services: BotServices, forge: ForgeArea | None
) -> tuple[Conversation | None, FallbackChain | None]:
    """With providers configured: `!status` shows them, and operators can chat."""
    if not cfg.fallback_providers:
        return None, None
    chain = FallbackChain.from_config(cfg.model, cfg.fallback_providers, cfg.chain, soul.text)
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

    services.status_sections.append(section)
    conversation = Conversation(
        complete,
        cfg.safety,
        forge.is_sensitive_room if forge is not None else (lambda room: False),
    )
    return conversation, chain


async def _burns(
    cfg: FleetConfig,
    matrix: MatrixShell,
    reporter: Reporter,
    forge: ForgeArea | None,
    registry: CommandRegistry,
    services: BotServices,
    stack: AsyncExitStack,
) -> BurnService | None:
    """Burns need the bus and the forge; without either, `!burn` is not offered."""
    if cfg.bus is None or forge is None or cfg.gitea is None:
        return None

    async def alert(text: str, room: str) -> object:
        return await reporter.alert_operators(text, room)

    store = BurnStore(cfg.bot_dir / "burns.db")
    stack.callback(store.close)
    burns = await BurnService.open(
        cfg.bus,
        cfg.burn,
        store,
        forge.client,
        cfg.gitea.url,
        matrix.sender.text,
        matrix.sender.edit,
        alert,
        # A result counts only if signed by its wolf's registered key (`fleet agent add`).
        npub_of=partial(registered_npub, cfg.state_dir.expanduser()),
    )
    stack.push_async_callback(burns.close)
    burn_commands.register(registry, burns, forge.projects)
    services.health["nats"] = burns.health
    services.status_sections.append(burns.status_text)
    services.extras["burns"] = burns
    return burns


async def _cross_signing(cfg: FleetConfig, nio: AsyncClient) -> IdentityResult | None:
    """Sign our device with our own identity; without it the bot works, shown unverified."""
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
        return None
    if result.problem:
        log.error("cross_signing_problem", extra=fields(problem=result.problem))
    else:
        log.info("cross_signing_ok", extra=fields(master=result.master_fingerprint))
    return result


def _operator_trust(cfg: FleetConfig, nio: AsyncClient) -> OperatorTrust | None:
    """Operators trusted by their cross-signing identity; None under plain TOFU."""
    policy = cfg.matrix.trust.policy
    if policy is TrustPolicy.TOFU:
        return None
    pins = IdentityPins.load(cfg.bot_dir / "identity_pins.json")
    for user, key in cfg.matrix.trust.pinned_identities.items():
        pins.pin(user, key)
    return OperatorTrust(
        cfg.matrix.homeserver,
        nio.access_token,
        pins,
        allow_unsigned_devices=cfg.matrix.trust.allow_unsigned_devices,
        pin_on_first_sight=policy is TrustPolicy.IDENTITY_TOFU,
    )


async def run_forever(cfg: FleetConfig) -> None:
    """`fleet bot`: run until SIGINT/SIGTERM, then stop cleanly."""
    app = await BotApp.open(cfg)
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
