"""The sandbox forge held to Gitea's own API description, with faults on cue: the tests' Gitea.

Gitea cannot be installed here, so the tests run the product's sandbox forge
(`fleet.sandbox.forge.SandboxForge`: routes, users, tokens, collaborators, repos, issues,
labels, comments, hooks and signed webhook deliveries, with Gitea's semantics) wrapped in a referee:

* Every request and response is held to Gitea's swagger by `SwaggerValidator`, and every
  response body (and every webhook payload part) also to the strict pydantic models of
  `gitea-api-client`, generated from Gitea's API document. A request that breaks the schema
  is answered 422 and recorded in `violations`; a response that breaks either is a forge
  bug, recorded there too and answered 500, so `assert standin.violations == []` catches
  both.
* `requests` logs (method, path) of every request received, `warnings` every place where
  Gitea silently ignores part of a request, and `deliveries` every webhook POST (await
  `deliveries_settled()` before inspecting it).
* `fail_next`, `drop_next` and `delay_next` inject faults into the next requests;
  `outage(status)` answers every request with `status` until `end_outage()`, counting
  the refused ones in `refused` (`wait_refused(n)` waits for the n-th).

The wrapper adds checks and faults only: what the forge answers is the product's behaviour.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from aiohttp import web

from fleet.sandbox.forge import (
    NO_BODY,
    Delivery,
    Resp,
    Route,
    SandboxForge,
    go_json,
    webhook_signature,
)
from fleet.sandbox.forge import (
    implemented_operations as _implemented_below_base,
)
from fleettest.gitea_schema import SwaggerValidator

__all__ = [
    "NO_BODY",
    "Delivery",
    "GiteaStandin",
    "go_json",
    "implemented_operations",
    "webhook_signature",
]

# Webhook payload parts and the swagger definitions they are held to.
_PAYLOAD_PARTS = (
    ("issue", "Issue"),
    ("comment", "Comment"),
    ("repository", "Repository"),
    ("sender", "User"),
)


def implemented_operations() -> frozenset[tuple[str, str]]:
    """(method, swagger path template) of every endpoint the stand-in serves."""
    return _implemented_below_base()


class GiteaStandin(SandboxForge):
    """The sandbox forge on 127.0.0.1:<free port>, in memory, checked against the swagger."""

    def __init__(
        self,
        *,
        validator: SwaggerValidator | None = None,
        strict_label_ids: bool = False,
        version: str | None = None,
    ) -> None:
        self.validator = validator or SwaggerValidator.default()
        super().__init__(
            strict_label_ids=strict_label_ids,
            version=version or self.validator.version,
            keep_deliveries=None,
        )
        self.requests: list[tuple[str, str]] = []
        self.violations: list[str] = []
        self.warnings: list[str] = []
        self._faults: deque[tuple[str, float]] = deque()
        self._outage: int | None = None
        # Requests answered with the outage's status, and a condition on their count.
        self.refused = 0
        self._refused_changed = asyncio.Condition()

    async def __aenter__(self) -> GiteaStandin:
        await self.start()
        return self

    # ---- fault injection ----------------------------------------------------------------

    def fail_next(self, n: int, status: int = 503) -> None:
        """Answer the next n requests with `status` (and a Gitea-style error body)."""
        self._faults.extend(("fail", float(status)) for _ in range(n))

    def drop_next(self, n: int) -> None:
        """Close the connection of the next n requests without answering."""
        self._faults.extend(("drop", 0.0) for _ in range(n))

    def delay_next(self, n: int, seconds: float) -> None:
        """Hold the next n requests for `seconds` before handling them (then apply them)."""
        self._faults.extend(("delay", float(seconds)) for _ in range(n))

    def outage(self, status: int = 503) -> None:
        """Answer every request with `status` until `end_outage()`: a forge that is down
        for as long as the test decides, not for a wall-clock time."""
        self._outage = status

    def end_outage(self) -> None:
        self._outage = None

    async def wait_refused(self, count: int, timeout: float = 30.0) -> None:
        """Until `count` requests in all have been refused by an outage."""

        async def refused() -> None:
            async with self._refused_changed:
                await self._refused_changed.wait_for(lambda: self.refused >= count)

        await asyncio.wait_for(refused(), timeout)

    async def _intercept(self, request: web.Request) -> web.StreamResponse | None:
        self.requests.append((request.method, request.path))
        if self._outage is not None:
            status = self._outage
            await request.read()
            async with self._refused_changed:
                self.refused += 1
                self._refused_changed.notify_all()
            return self._send(Resp(status, {"message": "injected outage", "url": self.swagger_url}))
        fault = self._faults.popleft() if self._faults else None
        if fault is None:
            return None
        kind, value = fault
        if kind == "drop":
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=599)
        if kind == "delay":
            await asyncio.sleep(value)  # the fault itself: a slow server
            return None
        await request.read()
        return self._send(Resp(int(value), {"message": "injected fault", "url": self.swagger_url}))

    # ---- the referee --------------------------------------------------------------------

    def _warn(self, text: str) -> None:
        self.warnings.append(text)

    def _request_problems(
        self,
        method: str,
        path: str,
        query: Any,
        body: Any,
        parse_errors: list[str],
    ) -> list[str]:
        problems = self.validator.validate_request(method, path, query, body)
        self.violations.extend(parse_errors + problems)
        return problems

    def _outside(self, method: str, path: str) -> Resp:
        self.violations.append(f"{method} {path}: outside {self.validator.base_path}")
        return super()._outside(method, path)

    def _unrouted(self, method: str, path: str, route: Route | None) -> Resp:
        found = self.validator.match(path)
        if found is None or found.operation(method) is None:
            status = 404 if found is None else 405
            return Resp(status, {"message": "not found", "url": self.swagger_url})
        self.violations.append(f"{method} {found.template}: not implemented by the stand-in")
        return Resp(
            501, {"message": "not implemented by the Gitea stand-in", "url": self.swagger_url}
        )

    def _checked(self, method: str, path: str, resp: Resp) -> Resp:
        problems = self.validator.validate_response(
            method, path, resp.status, resp.body, resp.headers
        )
        if not problems:
            return resp
        self.violations.extend(f"stand-in bug: {p}" for p in problems)
        return Resp(
            500,
            {
                "message": "stand-in response broke the swagger: " + "; ".join(problems),
                "url": self.swagger_url,
            },
        )

    def _payload_checked(self, event_type: str, payload: dict[str, Any]) -> None:
        for part, definition in _PAYLOAD_PARTS:
            if part in payload:
                self.violations.extend(
                    f"stand-in bug: webhook {event_type}: {p}"
                    for p in self.validator.validate_definition(definition, payload[part])
                )
