"""`wolves:` in the config, kept apart from the wolf so loading a config stays light."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class WolvesConfig(BaseModel):
    """`wolves:` in the config: how hard the fleet may work Gitea and the models."""

    model_config = ConfigDict(extra="forbid")

    # Triage comments the whole fleet may post per clock hour (counted in NATS KV, shared
    # by every wolf). A wolf without limits produces spam, not triage.
    comments_per_hour: int = Field(120, ge=1)
    # Tasks one wolf works on at once (its requests overlap; the model is the slow part).
    concurrency: int = Field(2, ge=1, le=64)
    # How long a task may wait for the model chain before it is put back.
    model_deadline_s: float = Field(120.0, gt=0)
    # When no provider in the chain could answer, how long a task waits before another try.
    models_retry_s: float = Field(30.0, gt=0)
    # The wolf's own Nostr key (`fleet agent add` writes it and this line): it signs every
    # result, and the bot refuses a result not signed by the key it registered for the wolf.
    nostr_key_file: Path | None = None
