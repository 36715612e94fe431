"""Forge events: what a Gitea webhook delivery means, and how a batch reads in a room.

Pure: signature check, parsing and rendering are plain functions tested without a network.
A notice quotes issue titles and comment text written by people, so every quoted piece
passes the crisis detector first; a text that fires is not echoed into the room.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from fleetcore.safety import screen

# Gitea's X-Gitea-Event is the broad event: label and assignment changes arrive as `issues`.
HANDLED_ACTIONS: dict[str, frozenset[str]] = {
    "issues": frozenset({"opened", "closed", "reopened", "label_updated", "assigned"}),
    "issue_comment": frozenset({"created"}),
}
EXCERPT_CHARS = 140
MAX_LINES_PER_NOTICE = 15
WITHHELD = "(text not quoted here: it may be about someone's safety; please read it on Gitea)"


def verify_signature(secret: bytes, body: bytes, signature: str | None) -> bool:
    """HMAC-SHA256 of the raw body, hex; compared in constant time."""
    if not signature:
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    given = signature.strip().lower().removeprefix("sha256=")
    return hmac.compare_digest(expected, given)


@dataclass(frozen=True)
class ForgeEvent:
    repo: str
    event: str
    action: str
    number: int
    title: str
    url: str
    actor: str
    detail: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> ForgeEvent:
        return cls(**json.loads(text))


class BadDelivery(ValueError):
    """The body is not the JSON shape Gitea sends for this event."""


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1] + "…"


def _safe(text: str) -> str:
    return WITHHELD if text and screen(text).is_crisis else text


def parse_delivery(event: str, payload: Mapping[str, Any]) -> ForgeEvent | None:
    """The notice-worthy event in a delivery, or None for events the fleet ignores."""
    action = str(payload.get("action") or "")
    if action not in HANDLED_ACTIONS.get(event, frozenset()):
        return None
    try:
        issue = payload["issue"]
        repo = str(payload["repository"]["full_name"])
        actor = str((payload.get("sender") or {}).get("login") or "someone")
        number = int(issue["number"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BadDelivery(f"missing or malformed field: {exc}") from None
    title = _safe(str(issue.get("title") or ""))
    url = str(issue.get("html_url") or "")
    detail = ""
    if event == "issue_comment":
        comment = payload.get("comment") or {}
        detail = _safe(_excerpt(str(comment.get("body") or "")))
        url = str(comment.get("html_url") or url)
    elif action == "label_updated":
        names = [str(lb.get("name")) for lb in issue.get("labels") or [] if isinstance(lb, dict)]
        detail = ", ".join(names) if names else "none"
    elif action == "assigned":
        assignees = issue.get("assignees") or ([issue["assignee"]] if issue.get("assignee") else [])
        detail = ", ".join(str(a.get("login")) for a in assignees if isinstance(a, dict))
    return ForgeEvent(repo, event, action, number, title, url, actor, detail)


def render_line(e: ForgeEvent) -> str:
    ref = f"#{e.number} {e.title}".rstrip()
    if e.event == "issue_comment":
        return f"💬 {e.actor} on {ref}: {e.detail}  {e.url}"
    verb = {
        "opened": "🆕 {a} opened {r}",
        "closed": "✅ {a} closed {r}",
        "reopened": "↩️ {a} reopened {r}",
        "label_updated": "🏷️ {a} set labels on {r}: {d}",
        "assigned": "👤 {a} assigned {r} to {d}",
    }[e.action]
    return verb.format(a=e.actor, r=ref, d=e.detail) + f"  {e.url}"


def render_notice(events: Sequence[ForgeEvent]) -> str:
    """One event is one line; a burst is one message with a count, capped in length."""
    if len(events) == 1:
        return f"[{events[0].repo}] " + render_line(events[0])
    repos = sorted({e.repo for e in events})
    head = f"{len(events)} forge events in {', '.join(repos)}:"
    lines = [render_line(e) for e in events[:MAX_LINES_PER_NOTICE]]
    if len(events) > MAX_LINES_PER_NOTICE:
        lines.append(f"… and {len(events) - MAX_LINES_PER_NOTICE} more")
    return "\n".join([head, *lines])
