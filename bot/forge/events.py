"""Forge events: what a Gitea webhook delivery means, and how a batch reads in a room.

Pure: signature check, parsing and rendering are plain functions tested without a network.
A notice quotes issue titles and comment text written by people, so every quoted piece
passes the crisis detector as the notice is rendered; a text that fires is not echoed into
the room. Rendering, not receiving, screens: the detector takes a good part of a second a
text, and Gitea waits for its 200 (5 s by default) while a receiver decodes.

`decode_delivery` is total: any bytes and headers give a `Delivery` or a `Rejection`, never
an exception, since whatever escapes it is a 500 (tests/hostile checks it with arbitrary
input). Nesting is measured before JSON is parsed, every field is type-checked rather than
trusted, and every quoted text is capped, so a notice always fits in a Matrix event.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
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
# Gitea caps titles at 255 characters and logins at 40; a signed body may still carry more.
TITLE_CHARS = 255
NAME_CHARS = 100
URL_CHARS = 500
# Gitea's payloads nest 5 deep; JSON deeper than this is refused before it is parsed.
MAX_DEPTH = 32
# Gitea sends a UUID; anything printable and short is accepted (tests use their own ids).
_DELIVERY_ID = re.compile(r"[\x21-\x7e]{1,128}")
MAX_LINES_PER_NOTICE = 15
WITHHELD = "(text not quoted here: it may be about someone's safety; please read it on Gitea)"


def verify_signature(secret: bytes, body: bytes, signature: str | None) -> bool:
    """HMAC-SHA256 of the raw body, hex; compared in constant time."""
    # compare_digest refuses non-ASCII str (TypeError): such a header is simply wrong.
    if not signature or not signature.isascii():
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


@dataclass(frozen=True)
class Rejection:
    """Why a delivery was refused: the HTTP status to answer and a reason fit for a log."""

    status: int
    reason: str


@dataclass(frozen=True)
class Delivery:
    """A verified delivery: `event` is None for the kinds the fleet does not report."""

    delivery_id: str
    event_name: str
    body_sha256: str
    event: ForgeEvent | None


def _text(value: object, limit: int) -> str:
    """One line of at most `limit` characters, valid UTF-8 (JSON may carry lone surrogates)."""
    flat = " ".join(str(value).split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return flat.encode("utf-8", "replace").decode("utf-8")


def _excerpt(text: str) -> str:
    return _text(text, EXCERPT_CHARS)


def _safe(text: str) -> str:
    return WITHHELD if text and screen(text).is_crisis else text


def _object(value: object, where: str, *, optional: bool = False) -> Mapping[str, Any]:
    if optional and not value:
        return {}
    if not isinstance(value, dict):
        raise BadDelivery(f"{where}: not an object")
    return value


def _list(value: object, where: str) -> list[Any]:
    if not value:
        return []
    if not isinstance(value, list):
        raise BadDelivery(f"{where}: not a list")
    return value


def parse_delivery(event: str, payload: Mapping[str, Any]) -> ForgeEvent | None:
    """The notice-worthy event in a delivery, or None for events the fleet ignores."""
    action = payload.get("action")
    if not isinstance(action, str) or action not in HANDLED_ACTIONS.get(event, frozenset()):
        return None
    issue = _object(payload.get("issue"), "issue")
    repository = _object(payload.get("repository"), "repository")
    number = issue.get("number")
    # bool is an int in Python; a float (1e400 is inf) or a huge int is not an issue number.
    if isinstance(number, bool) or not isinstance(number, int) or not 0 < number < 2**63:
        raise BadDelivery("issue.number: not a positive integer")
    repo = _text(repository.get("full_name") or "", NAME_CHARS)
    if not repo:
        raise BadDelivery("repository.full_name: missing")
    login = _object(payload.get("sender"), "sender", optional=True).get("login")
    actor = _text(login, NAME_CHARS) if login else "someone"
    title = _text(issue.get("title") or "", TITLE_CHARS)
    url = _text(issue.get("html_url") or "", URL_CHARS)
    detail = ""
    if event == "issue_comment":
        comment = _object(payload.get("comment"), "comment", optional=True)
        detail = _excerpt(str(comment.get("body") or ""))
        url = _text(comment.get("html_url") or url, URL_CHARS)
    elif action == "label_updated":
        labels = _list(issue.get("labels"), "issue.labels")
        names = [str(lb.get("name")) for lb in labels if isinstance(lb, dict)]
        detail = _excerpt(", ".join(names)) if names else "none"
    elif action == "assigned":
        assignees = _list(issue.get("assignees"), "issue.assignees") or [issue.get("assignee")]
        detail = _excerpt(", ".join(str(a.get("login")) for a in assignees if isinstance(a, dict)))
    return ForgeEvent(repo, event, action, number, title, url, actor, detail)


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(body: bytes) -> int:
    """How deep the brackets of a JSON text nest, without parsing (or recursing into) it.

    Strings are cut out first (so brackets quoted in a title do not count): the pattern
    always consumes from the quote it starts at, an unterminated string running to the end,
    so the cut is one linear pass. The remaining brackets are summed as +1/-1 steps; the
    depth is the largest prefix sum. Malformed JSON may measure oddly; it fails to parse
    after.
    """
    skeleton = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    return max(itertools.accumulate(map(_STEP.__getitem__, skeleton)), default=0)


def decode_delivery(secret: bytes, body: bytes, headers: Mapping[str, str]) -> Delivery | Rejection:
    """Verify, then decode: a typed answer for any input, the signature checked first."""
    if not verify_signature(secret, body, headers.get("X-Gitea-Signature")):
        return Rejection(401, "bad signature")
    delivery_id = (headers.get("X-Gitea-Delivery") or "").strip()
    if not _DELIVERY_ID.fullmatch(delivery_id):
        return Rejection(400, "missing or malformed X-Gitea-Delivery")
    event_name = (headers.get("X-Gitea-Event") or "").strip()
    if json_depth(body) > MAX_DEPTH:
        return Rejection(400, "JSON nested too deeply")
    try:
        # ValueError covers bad JSON, bad UTF-8 and over-long integer literals; the depth
        # check above keeps RecursionError out, caught all the same as a second line.
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise BadDelivery("body is not a JSON object")
        event = parse_delivery(event_name, payload)
    except (ValueError, RecursionError) as exc:
        return Rejection(400, f"malformed body: {str(exc)[:100]}")
    return Delivery(delivery_id, event_name, hashlib.sha256(body).hexdigest(), event)


def render_line(e: ForgeEvent) -> str:
    """One event's line; the title and a comment's words are screened here (see above)."""
    ref = f"#{e.number} {_safe(e.title)}".rstrip()
    if e.event == "issue_comment":
        return f"💬 {e.actor} on {ref}: {_safe(e.detail)}  {e.url}"
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
