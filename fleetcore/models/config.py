"""Configuration of the chain, as in the seed: `model:` + `fallback_providers:` (+ `chain:`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fleetcore.urls import HttpUrl


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: str
    provider: str


class ProviderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    kind: Literal["openai", "anthropic"] = "openai"
    model: str
    base_url: HttpUrl
    # Name of the environment variable holding the key; None for local servers.
    api_key_env: str | None = None
    # Free tiers often log prompts: sensitive work never goes to such a provider.
    logs_prompts: bool = False
    context_tokens: int = Field(8192, ge=256)


class ChainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connect_timeout_s: float = Field(3.0, gt=0)
    first_byte_timeout_s: float = Field(20.0, gt=0)
    total_timeout_s: float = Field(90.0, gt=0)
    bad_key_cooldown_s: float = Field(3600.0, ge=0)
    short_cooldown_s: float = Field(30.0, ge=0)
    # Out of credit, quota exhausted, spend limit reached: no retry helps until a person acts.
    billing_cooldown_s: float = Field(21600.0, ge=0)
    # How long a caller waits for a cooling chain by default.
    default_deadline_s: float = Field(120.0, ge=0)


def chain_warnings(model: ModelConfig | None, providers: list[ProviderConfig]) -> list[str]:
    out = []
    if 0 < len(providers) < 3:
        out.append(
            f"fallback_providers: the chain is {len(providers)} deep; at least 3 keep the "
            "fleet answering when a provider goes down"
        )
    if providers and model is None:
        out.append("model: not set; the first of fallback_providers is the primary")
    names = [p.provider for p in providers]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        out.append(f"fallback_providers: provider names repeat: {', '.join(dupes)}")
    return out
