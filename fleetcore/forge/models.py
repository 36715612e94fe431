"""What the fleet reads from Gitea, typed; unknown fields are ignored."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Label:
    id: int
    name: str
    color: str = ""

    @classmethod
    def of(cls, d: dict[str, Any]) -> Label:
        return cls(int(d["id"]), str(d["name"]), str(d.get("color") or ""))


@dataclass(frozen=True)
class Issue:
    number: int
    title: str
    body: str
    state: str
    labels: tuple[Label, ...]
    html_url: str
    id: int
    content_version: int | None = None

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    @classmethod
    def of(cls, d: dict[str, Any]) -> Issue:
        return cls(
            number=int(d["number"]),
            title=str(d.get("title") or ""),
            body=str(d.get("body") or ""),
            state=str(d.get("state") or ""),
            labels=tuple(Label.of(x) for x in d.get("labels") or []),
            html_url=str(d.get("html_url") or ""),
            id=int(d.get("id") or 0),
            content_version=d.get("content_version"),
        )


@dataclass(frozen=True)
class Comment:
    id: int
    body: str
    user: str
    html_url: str
    created_at: datetime | None = None

    @classmethod
    def of(cls, d: dict[str, Any]) -> Comment:
        user = d.get("user") or {}
        created = None
        with contextlib.suppress(TypeError, ValueError):
            created = datetime.fromisoformat(str(d.get("created_at")).replace("Z", "+00:00"))
        return cls(
            int(d["id"]),
            str(d.get("body") or ""),
            str(user.get("login") or ""),
            str(d.get("html_url") or ""),
            created,
        )


@dataclass(frozen=True)
class Repo:
    full_name: str
    private: bool
    html_url: str

    @classmethod
    def of(cls, d: dict[str, Any]) -> Repo:
        return cls(str(d["full_name"]), bool(d.get("private")), str(d.get("html_url") or ""))


@dataclass(frozen=True)
class Hook:
    id: int
    url: str
    events: tuple[str, ...]
    active: bool

    @classmethod
    def of(cls, d: dict[str, Any]) -> Hook:
        cfg = d.get("config") or {}
        return cls(
            int(d["id"]),
            str(cfg.get("url") or ""),
            tuple(d.get("events") or ()),
            bool(d.get("active")),
        )


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int


@dataclass(frozen=True)
class ForgeUser:
    """A Gitea account; `active` and `prohibit_login` are only true data for an admin viewer."""

    id: int
    login: str
    full_name: str = ""
    email: str = ""
    is_admin: bool = False
    active: bool = False
    prohibit_login: bool = False

    @classmethod
    def of(cls, d: dict[str, Any]) -> ForgeUser:
        return cls(
            int(d["id"]),
            str(d.get("login") or ""),
            str(d.get("full_name") or ""),
            str(d.get("email") or ""),
            bool(d.get("is_admin")),
            bool(d.get("active")),
            bool(d.get("prohibit_login")),
        )


@dataclass(frozen=True)
class AccessToken:
    """A token as Gitea lists it; `secret` is only ever set in the answer that minted it."""

    id: int
    name: str
    scopes: tuple[str, ...]
    last_eight: str
    secret: str = field(default="", repr=False)

    @classmethod
    def of(cls, d: dict[str, Any]) -> AccessToken:
        return cls(
            int(d["id"]),
            str(d.get("name") or ""),
            tuple(str(s) for s in d.get("scopes") or ()),
            str(d.get("token_last_eight") or ""),
            str(d.get("sha1") or ""),
        )
