"""Fake model providers on loopback that speak the real wire formats and misbehave on cue.

Used by the tests, `bench/failover.py`, `bench/burn.py` and `fleet demo`. Each server
records the requests it received, so a test can prove a cooling provider got none.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Reply = str | Callable[[dict[str, Any]], str]


@dataclass
class Behaviour:
    mode: str = (
        "ok"  # ok | status | hang | close | bad_json | empty | truncated | context | wrapped
    )
    text: Reply = "ok"
    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def ok(text: Reply = "ok") -> Behaviour:
    return Behaviour("ok", text=text)


def status(code: int, body: dict[str, Any] | None = None, **headers: str) -> Behaviour:
    return Behaviour("status", status=code, body=body, headers=headers)


def rate_limited(retry_after: str) -> Behaviour:
    return status(
        429,
        {"error": {"type": "rate_limit_error", "message": "slow down"}},
        **{"Retry-After": retry_after},
    )


def hang() -> Behaviour:
    return Behaviour("hang")


def close() -> Behaviour:
    return Behaviour("close")


def bad_json() -> Behaviour:
    return Behaviour("bad_json")


def empty() -> Behaviour:
    return Behaviour("empty")


def truncated() -> Behaviour:
    return Behaviour("truncated")


def context_too_long() -> Behaviour:
    return Behaviour("context")


def wrapped_error(code: int, message: str = "upstream error") -> Behaviour:
    """OpenRouter: a provider's error wrapped in an HTTP 200 body."""
    return Behaviour("wrapped", status=code, text=message)


def refused_url() -> str:
    """A loopback URL where nothing listens: connection refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


class FakeProvider:
    def __init__(self, kind: str = "openai", behaviour: Behaviour | None = None) -> None:
        self.kind = kind
        self.behaviour = behaviour or ok()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._release = asyncio.Event()
        self._arrival = asyncio.Condition()

    def behave(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour

    async def wait_requests(self, count: int = 1, timeout: float = 30.0) -> None:
        """Wait until `count` requests have arrived (a held one counts on arrival)."""

        async def arrived() -> None:
            async with self._arrival:
                await self._arrival.wait_for(lambda: len(self.requests) >= count)

        await asyncio.wait_for(arrived(), timeout)

    def release(self) -> None:
        """Let every request held by `hang()` go on (they then answer as `ok`)."""
        self._release.set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def __aenter__(self) -> FakeProvider:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_post("/v1/messages", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def _answer(self, text: str, stop: str | None = None) -> dict[str, Any]:
        if self.kind == "anthropic":
            return {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": "fake",
                "content": [{"type": "text", "text": text}],
                "stop_reason": stop or "end_turn",
                "usage": {"input_tokens": 1, "output_tokens": 1},
            }
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "model": "fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": stop or "stop",
                }
            ],
        }

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        async with self._arrival:
            self._arrival.notify_all()
        b = self.behaviour
        if b.mode == "ok":
            text = b.text(body) if callable(b.text) else b.text
            return web.json_response(self._answer(text))
        if b.mode == "status":
            return web.json_response(
                b.body or {"error": {"message": "fake"}}, status=b.status, headers=b.headers
            )
        if b.mode == "hang":
            await self._release.wait()
            return web.json_response(self._answer("too late"))
        if b.mode == "close":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if b.mode == "bad_json":
            return web.Response(text='{"choices": [', content_type="application/json")
        if b.mode == "empty":
            return web.json_response(self._answer(""))
        if b.mode == "truncated":
            return web.json_response(
                self._answer("half an ans", "max_tokens" if self.kind == "anthropic" else "length")
            )
        if b.mode == "context":
            if self.kind == "anthropic":
                err = {
                    "type": "error",
                    "error": {
                        "type": "invalid_request_error",
                        "message": "prompt is too long: 9000 tokens",
                    },
                }
            else:
                err = {
                    "error": {
                        "message": "This model's maximum context length is 8192 tokens",
                        "type": "invalid_request_error",
                        "code": "context_length_exceeded",
                    }
                }
            return web.json_response(err, status=400)
        if b.mode == "wrapped":
            text = b.text if isinstance(b.text, str) else "error"
            return web.Response(
                text=json.dumps(
                    {
                        "error": {
                            "code": b.status,
                            "message": text,
                            "metadata": {"provider_name": "Upstream"},
                        }
                    }
                ),
                content_type="application/json",
            )
        raise AssertionError(f"unknown behaviour {b.mode}")


def triage_reply(body: dict[str, Any]) -> str:
    """A rubric-valid triage that quotes the issue's title, as a good model would."""
    prompt = str(body.get("messages", [{}])[-1].get("content", ""))
    for message in body.get("messages", []):
        if "Title: " in str(message.get("content", "")):
            prompt = str(message["content"])
            break
    title = next(
        (line[len("Title: ") :] for line in prompt.splitlines() if line.startswith("Title: ")),
        "",
    )
    return (
        "Evidence:\n"
        f'- "{title}" (from the title)\n'
        "Recommended next action: Reproduce it on the current main branch and add a test.\n"
        "Confidence: medium\n"
    )
