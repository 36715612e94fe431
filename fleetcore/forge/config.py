"""`gitea:` and `projects:` sections of the configuration."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fleetcore.secrets import SecretRef
from fleetcore.urls import HttpUrl


class WebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Loopback by default: put a reverse proxy in front if Gitea runs elsewhere.
    host: str = "127.0.0.1"
    port: int = Field(8787, ge=1, le=65535)
    secret: SecretRef
    # The URL Gitea should post to (what `fleet forge hook install` registers).
    public_url: str | None = None
    # Events arriving within this window after the first share one room message.
    batch_window_s: float = Field(2.0, ge=0, le=60)
    # A client gets this long for its headers, and as long again for its body, before the
    # connection is dropped: a stalled client must not hold a descriptor for good.
    read_timeout_s: float = Field(10.0, gt=0, le=300)


class GiteaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl
    token: SecretRef
    # The site admin's login: Gitea mints, lists and deletes users' tokens only with basic
    # auth, so `fleet agent add|remove` need it (the admin's token alone is refused there).
    admin_user: str | None = None
    admin_password: SecretRef | None = None
    connect_timeout_s: float = Field(5.0, gt=0)
    read_timeout_s: float = Field(20.0, gt=0)
    retries: int = Field(3, ge=0, le=10)
    webhook: WebhookConfig | None = None


class ProjectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repo: str
    room: str | None = None
    privacy: Literal["normal", "local-only"] = "normal"

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", value):
            raise ValueError("not owner/name")
        return value

    @field_validator("room")
    @classmethod
    def _room(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[!#][^:\s]+:[A-Za-z0-9.\-]+(:\d+)?", value):
            raise ValueError("not a room ID or alias (expected !id:server or #alias:server)")
        return value
