"""Gitea access-token scopes, normalised the way Gitea stores and reports them.

Gitea keeps a token's scopes as a bitmap and answers them back in a canonical form
(`AccessTokenScope.Normalize`): a write scope implies its read scope, so
`["read:issue", "write:issue"]` comes back as `["write:issue"]`; every write scope together
is `all`; `public-only` stands first. Comparing what a token was minted with against what
Gitea lists (as `fleet doctor` does) is only meaningful in that form, and the sandbox forge
reports scopes through the same function so both sides agree on one definition.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

# allAccessTokenScopes' order, which is the order Gitea writes a normalised scope in.
SCOPE_CATEGORIES: Final = (
    "activitypub",
    "admin",
    "misc",
    "notification",
    "organization",
    "package",
    "issue",
    "repository",
    "user",
)
VALID_SCOPES: Final = frozenset(
    {"all", "public-only"}
    | {f"{level}:{cat}" for level in ("read", "write") for cat in SCOPE_CATEGORIES}
)


class InvalidScope(ValueError):
    """A scope Gitea does not know (it answers 400 when asked to mint it)."""


def normalize_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Gitea's canonical form of a set of scopes; raises InvalidScope for unknown ones."""
    wanted = {s.strip() for s in scopes if s and s.strip()}
    unknown = sorted(wanted - VALID_SCOPES)
    if unknown:
        raise InvalidScope(f"unknown access token scope {unknown[0]!r}")
    levels: dict[str, str] = {}
    for scope in wanted - {"all", "public-only"}:
        level, _, category = scope.partition(":")
        if level == "write" or category not in levels:
            levels[category] = level
    if "all" in wanted:
        levels = dict.fromkeys(SCOPE_CATEGORIES, "write")
    out = ["public-only"] if "public-only" in wanted else []
    if all(levels.get(cat) == "write" for cat in SCOPE_CATEGORIES):
        return (*out, "all")
    out += [f"{levels[cat]}:{cat}" for cat in SCOPE_CATEGORIES if cat in levels]
    return tuple(out)


def grants(scopes: Iterable[str], required: str) -> bool:
    """Whether a token with `scopes` passes Gitea's check for `required` (`level:category`)."""
    have = set(normalize_scopes(scopes))
    level, _, category = required.partition(":")
    return (
        "all" in have
        or f"write:{category}" in have
        or (level == "read" and f"read:{category}" in have)
    )
