"""The real Gitea webhook deliveries in ../shared/gitea/webhooks, for the tests to replay."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

SHARED = Path(os.environ.get("HERMES_SHARED_DIR") or Path(__file__).resolve().parents[3] / "shared")
WEBHOOKS = SHARED / "gitea" / "webhooks"
if not (WEBHOOKS / "deliveries.json").is_file():
    raise RuntimeError(f"Gitea test data missing at {WEBHOOKS} (set HERMES_SHARED_DIR)")
DELIVERIES: dict[str, Any] = json.loads((WEBHOOKS / "deliveries.json").read_text())


def body_of(delivery: dict[str, Any]) -> bytes:
    return (WEBHOOKS / delivery["file"]).read_bytes()


def resign(
    delivery: dict[str, Any], secret: str, body: bytes | None = None, delivery_id: str | None = None
) -> tuple[dict[str, str], bytes]:
    """Gitea's headers for a delivery, signed with our test secret."""
    raw = body if body is not None else body_of(delivery)
    headers = dict(delivery["headers"])
    sig = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    for name in ("X-Gitea-Signature", "X-Gogs-Signature"):
        headers[name] = sig
    headers["X-Hub-Signature-256"] = "sha256=" + sig
    headers.pop("X-Hub-Signature", None)
    if delivery_id is not None:
        headers["X-Gitea-Delivery"] = delivery_id
    return headers, raw
