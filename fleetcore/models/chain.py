"""`FallbackChain`: ask the primary; when it fails, the next; never go deaf.

The order is the configured one (primary first). A provider in cooldown is skipped without
a request. Sensitive work only goes to providers that do not log prompts. When everything
is cooling down, the chain waits for the earliest provider if that fits the caller's
deadline, else it fails with one error that lists every provider's last problem.

A provider that refuses one request (a moderation flag, a request too large for it) is not
asked again for that request, and keeps serving the others. A provider out of credit or
over its spend limit rests for `billing_cooldown_s` (hours), and `status_text` says so in
words, since only a person can fix it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from fleetcore.log import fields
from fleetcore.metrics import Metrics
from fleetcore.models.classify import Action, Decision, Failure, Kind, billing_hint, classify
from fleetcore.models.config import ChainConfig, ModelConfig, ProviderConfig
from fleetcore.models.cooldown import Cooldowns
from fleetcore.models.providers import Provider, ProviderFailure, make_provider

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Completion:
    text: str
    provider: str
    model: str
    latency_s: float
    attempts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProviderHealth:
    name: str
    model: str
    state: str  # "ok" | "cooling" | "bad_key" | "billing"
    until: datetime | None
    reason: str
    logs_prompts: bool
    words: str = ""  # why, for a person: "out of credit", "rate limited"
    last_error: str = ""  # the class (Kind) of the last failure, even when no longer cooling
    cooldown_left_s: float = 0.0


class ChainError(RuntimeError):
    pass


class ChainExhausted(ChainError):
    """Every provider failed. `brief` says how in a word each, for a chat room: the HTTP
    status or the failure's class (`503`, `timeout`), never the provider's own text, which
    can quote part of an API key ("Incorrect API key provided: sk-...")."""

    def __init__(self, last_errors: dict[str, str], brief: dict[str, str] | None = None) -> None:
        self.last_errors = dict(last_errors)
        self.brief = dict(brief or {})
        listed = "; ".join(f"{name}: {err}" for name, err in last_errors.items())
        super().__init__(f"no model provider could answer ({listed})")


class NoPrivateProvider(ChainError):
    """Sensitive work and no provider that keeps prompts private: refuse, never leak."""


class RequestRejected(ChainError):
    """The request itself is invalid (a 400 that is not about context): no retry helps."""


@dataclass
class FallbackChain:
    providers: list[ProviderConfig]
    cfg: ChainConfig
    soul: str
    primary: str | None = None
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    transport: httpx.AsyncBaseTransport | None = None
    # Counts (requests, answers, failures, skips) for whoever subscribes: benches, tests.
    metrics: Metrics = field(default_factory=Metrics)

    def __post_init__(self) -> None:
        self._http = httpx.AsyncClient(transport=self.transport)
        ordered = sorted(self.providers, key=lambda p: p.provider != self.primary)
        self._providers = [make_provider(p, self._http, self.cfg) for p in ordered]
        self._cooldowns = Cooldowns(self.clock)
        self._last_error: dict[str, str] = {}
        self._last_decision: dict[str, Decision] = {}

    @classmethod
    def from_config(
        cls, model: ModelConfig | None, providers: list[ProviderConfig], cfg: ChainConfig, soul: str
    ) -> FallbackChain:
        return cls(providers, cfg, soul, primary=model.provider if model else None)

    async def aclose(self) -> None:
        await self._http.aclose()

    def provider(self, name: str) -> Provider:
        for p in self._providers:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self._providers]

    # -- asking --------------------------------------------------------------------------

    async def complete(
        self,
        messages: Messages,
        *,
        sensitive: bool = False,
        deadline_s: float | None = None,
        max_tokens: int = 512,
        min_context: int | None = None,
        allow: Callable[[str], bool] | None = None,
    ) -> Completion:
        t0 = self.clock()
        deadline = t0 + (self.cfg.default_deadline_s if deadline_s is None else deadline_s)
        candidates = [p for p in self._providers if allow is None or allow(p.name)]
        if sensitive:
            candidates = [p for p in candidates if not p.cfg.logs_prompts]
            if not candidates:
                raise NoPrivateProvider(
                    "this work is private and every configured provider logs prompts; "
                    "add a local or no-log provider"
                )
        if not candidates:
            raise ChainExhausted({"chain": "no provider is allowed for this work"})
        need = min_context or 0
        attempts: list[str] = []
        refused: set[str] = set()  # providers that refused this request: not asked again
        failed_rounds = 0
        while True:
            usable = [
                p for p in candidates if p.cfg.context_tokens >= need and p.name not in refused
            ]
            if not usable:
                errors = self._errors(candidates)
                if not any(p.cfg.context_tokens >= need for p in candidates):
                    errors["context"] = f"none >= {need}"
                raise ChainExhausted(errors, self._brief(candidates))
            tried = context_bumped = False
            for p in usable:
                if self._cooldowns.is_cooling(p.name):
                    self.metrics.record(f"chain.skipped_cooling:{p.name}", 1)
                    continue
                tried = True
                result = await self._ask(p, messages, max_tokens, attempts)
                if not isinstance(result, Action):
                    return self._answered(p, result, t0, attempts)
                if result is Action.NEXT:
                    refused.add(p.name)
                elif result is Action.LARGER_CONTEXT:
                    need, context_bumped = max(need, p.cfg.context_tokens + 1), True
                    break
            if context_bumped:
                continue
            if tried:
                failed_rounds += 1
                if failed_rounds >= 2:  # every usable provider had its chance, twice
                    raise self._exhausted(candidates)
            waiting = [p.name for p in usable if p.name not in refused]
            wait = self._cooldowns.earliest_ready(waiting) or 0.0
            if wait > 0:
                if self.clock() + wait > deadline:
                    raise self._exhausted(candidates)
                await self.sleep(wait)

    def _answered(self, p: Provider, text: str, t0: float, attempts: list[str]) -> Completion:
        done = Completion(text, p.name, p.cfg.model, self.clock() - t0, tuple(attempts))
        self.metrics.record(f"chain.answers:{p.name}", 1)
        log.info(
            "model_answer",
            extra=fields(
                provider=p.name,
                model=p.cfg.model,
                latency_ms=round(done.latency_s * 1000, 1),
                attempts=attempts,
            ),
        )
        return done

    async def _ask(
        self, p: Provider, messages: Messages, max_tokens: int, attempts: list[str]
    ) -> str | Action:
        for attempt in (0, 1):
            attempts.append(p.name)
            self.metrics.record(f"chain.requests:{p.name}", 1)
            try:
                return await p.complete(self.soul, messages, max_tokens)
            except ProviderFailure as exc:
                d = self._decide(p, exc.failure, attempt)
            self.metrics.record(f"chain.failures:{d.kind.value}", 1)
            # Out of credit or over a spend limit: only a person can fix it, so say it louder.
            log.log(
                logging.ERROR if d.kind is Kind.BILLING else logging.WARNING,
                "model_failure",
                extra=fields(
                    provider=p.name,
                    kind=d.kind.value,
                    action=d.action.value,
                    cooldown_s=round(d.cooldown_s, 1),
                    reason=d.reason[:200],
                ),
            )
            if d.action is Action.RETRY_SAME:
                continue
            if d.action is Action.ABORT:
                raise RequestRejected(f"{p.name}: {d.reason}")
            return d.action
        return Action.FAILOVER

    def _decide(self, p: Provider, failure: Failure, attempt: int) -> Decision:
        """Classify a failure, remember it, and start the cooldown it earned."""
        d = classify(
            failure,
            attempt=attempt,
            short_cooldown_s=self.cfg.short_cooldown_s,
            bad_key_cooldown_s=self.cfg.bad_key_cooldown_s,
            billing_cooldown_s=self.cfg.billing_cooldown_s,
            now_epoch=self.wall(),
        )
        self._last_error[p.name] = d.reason
        self._last_decision[p.name] = d
        if d.action not in (Action.RETRY_SAME, Action.NEXT):
            self._cooldowns.extend(p.name, d.cooldown_s, d.kind.value, d.reason, d.words)
        return d

    async def complete_with(
        self, name: str, messages: Messages, max_tokens: int = 512
    ) -> Completion:
        """One provider, no fallback: for grading a model (`fleet safety-test`)."""
        p = self.provider(name)
        t0 = self.clock()
        try:
            text = await p.complete(self.soul, messages, max_tokens)
        except ProviderFailure as exc:
            d = self._decide(p, exc.failure, attempt=1)
            raise ChainError(f"{name}: {d.reason}") from None
        return Completion(text, name, p.cfg.model, self.clock() - t0, (name,))

    # -- telling -------------------------------------------------------------------------

    def _errors(self, providers: list[Provider]) -> dict[str, str]:
        out = {}
        for p in providers:
            cooling = self._cooldowns.get(p.name)
            err = self._last_error.get(p.name, "no answer")
            if cooling is not None:
                err += f" (cooling down {self._cooldowns.remaining(p.name):.0f}s)"
            out[p.name] = err
        return out

    def _brief(self, providers: list[Provider]) -> dict[str, str]:
        out = {}
        for p in providers:
            d = self._last_decision.get(p.name)
            out[p.name] = "no_answer" if d is None else str(d.status or d.kind.value)
        return out

    def _exhausted(self, providers: list[Provider]) -> ChainExhausted:
        return ChainExhausted(self._errors(providers), self._brief(providers))

    def last_failure(self, name: str) -> Decision | None:
        """How the provider's last failed request was classified (None: none failed yet)."""
        return self._last_decision.get(name)

    def health(self) -> list[ProviderHealth]:
        out = []
        for p in self._providers:
            last = self._last_decision.get(p.name)
            last_kind = last.kind.value if last is not None else ""
            cooling = self._cooldowns.get(p.name)
            if cooling is None:
                out.append(
                    ProviderHealth(
                        p.name, p.cfg.model, "ok", None, "", p.cfg.logs_prompts, "", last_kind
                    )
                )
                continue
            left = self._cooldowns.remaining(p.name)
            until = datetime.fromtimestamp(self.wall() + left, UTC)
            state = {Kind.BAD_KEY.value: "bad_key", Kind.BILLING.value: "billing"}.get(
                cooling.kind, "cooling"
            )
            out.append(
                ProviderHealth(
                    p.name,
                    p.cfg.model,
                    state,
                    until,
                    cooling.reason,
                    p.cfg.logs_prompts,
                    cooling.words,
                    last_kind,
                    left,
                )
            )
        return out

    def status_text(self) -> str:
        lines = ["Model providers:"]
        for h in self.health():
            if h.state == "ok":
                lines.append(f"- {h.name} ({h.model}): ok")
                continue
            fmt = "%Y-%m-%d %H:%M UTC" if h.state == "billing" else "%H:%M:%S UTC"
            until = h.until.strftime(fmt) if h.until else "?"
            reason = h.reason[:160]
            if h.state == "billing":
                words = h.words or "billing problem"
                reason = reason.removeprefix(f"{words}: ")  # the provider's own words follow
                lines.append(
                    f"- {h.name} ({h.model}): {words.upper()}: a person must act "
                    f"({billing_hint(words)}); out of the chain until {until}: {reason}"
                )
            elif h.state == "bad_key":
                lines.append(f"- {h.name} ({h.model}): BAD KEY until {until}: {reason}")
            else:
                why = f" ({h.words})" if h.words else ""
                lines.append(f"- {h.name} ({h.model}): cooling down{why} until {until}: {reason}")
        return "\n".join(lines)

    @staticmethod
    def footer(c: Completion) -> str:
        return f"— answered by {c.provider} ({c.model})"
