"""Wire formats: OpenAI-compatible chat completions and the Anthropic Messages API.

A provider turns (system, messages) into text or raises `ProviderFailure` with what the
classifier needs. It never decides what to do about a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from typing import Any

import httpx

from fleetcore.models.classify import Failure
from fleetcore.models.config import ChainConfig, ProviderConfig

ANTHROPIC_VERSION = "2023-06-01"


class ProviderFailure(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.detail or failure.stage)
        self.failure = failure


@dataclass
class Provider:
    cfg: ProviderConfig
    http: httpx.AsyncClient
    chain: ChainConfig
    # Set by `fleet chain test --break-primary`: replaces the key in this process only.
    key_override: str | None = None

    @property
    def name(self) -> str:
        return self.cfg.provider

    def key(self) -> str | None:
        if self.key_override is not None:
            return self.key_override
        if self.cfg.api_key_env is None:
            return None
        return os.environ.get(self.cfg.api_key_env) or None

    def url(self) -> str:
        raise NotImplementedError

    def request(
        self, system: str, messages: list[dict[str, str]], max_tokens: int
    ) -> tuple[dict[str, str], dict[str, Any]]:
        raise NotImplementedError

    def parse(self, data: Any) -> str:
        raise NotImplementedError

    def error_inside(self, data: Any) -> bool:
        """An error reported in a 200 body: never take its partial text as the answer."""
        return isinstance(data, dict) and "error" in data

    async def complete(self, system: str, messages: list[dict[str, str]], max_tokens: int) -> str:
        headers, body = self.request(system, messages, max_tokens)
        timeout = httpx.Timeout(
            connect=self.chain.connect_timeout_s,
            read=self.chain.first_byte_timeout_s,
            write=self.chain.connect_timeout_s,
            pool=self.chain.connect_timeout_s,
        )
        try:
            async with asyncio.timeout(self.chain.total_timeout_s):
                resp = await self.http.post(self.url(), json=body, headers=headers, timeout=timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ProviderFailure(Failure("connect", exc=exc, detail=str(exc))) from None
        except httpx.ReadTimeout as exc:
            raise ProviderFailure(Failure("first_byte", exc=exc)) from None
        except TimeoutError as exc:
            raise ProviderFailure(Failure("total", exc=exc)) from None
        except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError) as exc:
            raise ProviderFailure(Failure("reset", exc=exc, detail=str(exc))) from None
        if resp.status_code != 200:
            raise ProviderFailure(
                Failure("http", resp.status_code, resp.content, dict(resp.headers))
            )
        try:
            data = resp.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ProviderFailure(
                Failure("body", 200, resp.content, detail="malformed JSON in the answer")
            ) from None
        if self.error_inside(data):
            # OpenRouter: the model had started, so the error comes with HTTP 200.
            raise ProviderFailure(Failure("http", 200, resp.content, dict(resp.headers)))
        text = self.parse(data)
        if not text.strip():
            raise ProviderFailure(Failure("body", 200, resp.content, detail="empty answer"))
        return text


class OpenAIProvider(Provider):
    """OpenRouter, Ollama (`/v1`), llama.cpp's server, vLLM: base URL ends in `/v1`."""

    def url(self) -> str:
        return f"{self.cfg.base_url}/chat/completions"

    def request(
        self, system: str, messages: list[dict[str, str]], max_tokens: int
    ) -> tuple[dict[str, str], dict[str, Any]]:
        headers = {"content-type": "application/json"}
        key = self.key()
        if key:
            headers["authorization"] = f"Bearer {key}"
        body = {
            "model": self.cfg.model,
            "messages": [{"role": "system", "content": system}, *messages],
            "max_tokens": max_tokens,
        }
        return headers, body

    def error_inside(self, data: Any) -> bool:
        if super().error_inside(data):
            return True
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return False
        # OpenRouter: `choices[0].error` and `finish_reason: "error"` after a mid-answer failure.
        return "error" in choices[0] or choices[0].get("finish_reason") == "error"

    def parse(self, data: Any) -> str:
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise ProviderFailure(
                Failure("body", 200, detail="no choices[0].message.content")
            ) from None
        finish = choice.get("finish_reason")
        if finish == "length":
            raise ProviderFailure(Failure("body", 200, detail="truncated (finish_reason=length)"))
        if finish == "content_filter":
            raise ProviderFailure(
                Failure("refused", 200, detail="content filtered (finish_reason=content_filter)")
            )
        return str(text)


class AnthropicProvider(Provider):
    """Anthropic Messages: `x-api-key`, a version header, `system` outside the messages."""

    def url(self) -> str:
        base = self.cfg.base_url
        return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"

    def request(
        self, system: str, messages: list[dict[str, str]], max_tokens: int
    ) -> tuple[dict[str, str], dict[str, Any]]:
        headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        key = self.key()
        if key:
            headers["x-api-key"] = key
        body = {
            "model": self.cfg.model,
            "system": system,
            "messages": [m for m in messages if m["role"] in ("user", "assistant")],
            "max_tokens": max_tokens,
        }
        return headers, body

    def error_inside(self, data: Any) -> bool:
        return super().error_inside(data) or (
            isinstance(data, dict) and data.get("type") == "error"
        )

    def parse(self, data: Any) -> str:
        try:
            blocks = data["content"]
            text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
        except (KeyError, TypeError, AttributeError):
            raise ProviderFailure(Failure("body", 200, detail="no content blocks")) from None
        stop = data.get("stop_reason")
        if stop in ("max_tokens", "model_context_window_exceeded"):
            raise ProviderFailure(Failure("body", 200, detail=f"truncated (stop_reason={stop})"))
        if stop == "refusal":
            raise ProviderFailure(Failure("refused", 200, detail="refused (stop_reason=refusal)"))
        return text


def make_provider(cfg: ProviderConfig, http: httpx.AsyncClient, chain: ChainConfig) -> Provider:
    cls = AnthropicProvider if cfg.kind == "anthropic" else OpenAIProvider
    return cls(cfg, http, chain)
