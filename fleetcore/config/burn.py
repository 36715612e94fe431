"""`burn:` in the config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class BurnConfig(BaseModel):
    """`burn:` in the config."""

    model_config = ConfigDict(extra="forbid")

    # Tier whose wolves take a burn's tasks unless `!burn --tier` says otherwise.
    default_tier: str = "wolves"
    # Issues per burn unless `!burn --limit N`; and the most one burn may take.
    default_limit: int = Field(100, ge=1)
    max_limit: int = Field(1000, ge=1)
    # The progress message is edited at most this often.
    edit_interval_s: float = Field(2.0, ge=0.1)
    # Result digests are posted at most this often (and once when the burn ends).
    digest_interval_s: float = Field(30.0, ge=0.1)
