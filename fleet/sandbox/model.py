"""The sandbox model: an OpenAI-compatible chat completions server for `fleet demo`.

The demo's wolf needs a model that answers like a good one without a provider account: this
server replies to `POST /v1/chat/completions` with a triage that passes the wolf's rubric
(Evidence quoted from the issue, a Recommended next action, a Confidence), quoting the
issue's title from the prompt. It is not a model and does not pretend to be one: its
model id says `sandbox`, and it answers the same for the same issue.
"""

from __future__ import annotations

import itertools
import socket
import time
from types import TracebackType
from typing import Any, Final

from aiohttp import web

MODEL_ID: Final = "sandbox-triage"


def triage_reply(body: dict[str, Any]) -> str:
    """A rubric-valid triage that quotes the issue's title (the `Title: ` line the wolf sends)."""
    messages = body.get("messages") or []
    title = ""
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        for line in str(content or "").splitlines():
            if line.startswith("Title: "):
                title = line.removeprefix("Title: ").strip()
                break
        if title:
            break
    evidence = f'- "{title}" (from the title)' if title else '- "(no title given)"'
    return (
        "Evidence:\n"
        f"{evidence}\n"
        "Recommended next action: Reproduce it on the current main branch and add a test.\n"
        "Confidence: medium\n"
    )


def _words(text: str) -> int:
    return max(1, len(text.split()))


class SandboxModel:
    """Serves /v1/chat/completions and /v1/models on 127.0.0.1 (port 0: any free port)."""

    def __init__(self, port: int = 0) -> None:
        # Bound here, so the port (and `base_url`) is known from construction on: no
        # free-port probe, no "not started" state to guard.
        self._sock: socket.socket | None = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._sock.bind(("127.0.0.1", port))
        except OSError:
            self._sock.close()
            raise
        self.port = int(self._sock.getsockname()[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.requests = 0
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._complete)
        app.router.add_get("/v1/models", self._models)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        sock = self._sock or socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock = None
        try:
            if sock.getsockname()[1] == 0:  # started again after a stop: the same port
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("127.0.0.1", self.port))
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._runner = runner

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def __aenter__(self) -> SandboxModel:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "sandbox"}],
            }
        )

    async def _complete(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if (
            not isinstance(body, dict)
            or not body.get("messages")
            or not isinstance(body["messages"], list)
        ):
            return web.json_response(
                {
                    "error": {
                        "message": "'messages' is required",
                        "type": "invalid_request_error",
                        "param": "messages",
                        "code": None,
                    }
                },
                status=400,
            )
        self.requests += 1
        text = triage_reply(body)
        prompt = sum(
            _words(str(m.get("content", ""))) for m in body["messages"] if isinstance(m, dict)
        )
        completion = _words(text)
        return web.json_response(
            {
                "id": f"chatcmpl-sandbox-{next(self._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": str(body.get("model") or MODEL_ID),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            }
        )
