"""Structured logging: one JSON object per line.

Call sites log an event name plus fields (`log.info("reply_sent", extra={"fields": {...}})`).
Message bodies are never logged anywhere; the crisis guard relies on that, so there is no
field for them and the formatter drops any `body`/`text` field that slips in.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_FORBIDDEN = frozenset({"body", "text", "content", "message_text", "password", "token", "api_key"})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                if key in _FORBIDDEN:
                    continue
                # A field never overwrites the record's own keys (ts, level, event...).
                out[key if key not in out else f"field_{key}"] = value
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
        return json.dumps(out, default=str, ensure_ascii=False)


def setup(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # nio logs event contents at debug level; keep third parties quiet.
    for noisy in ("peewee", "aiohttp.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # nio warns per undecryptable event and per missing session; we log our own summary.
    logging.getLogger("nio").setLevel(logging.ERROR)
    logging.Formatter.converter = time.gmtime


def fields(**kw: Any) -> dict[str, Any]:
    """Shorthand: `log.info("x", extra=fields(room=..))`."""
    return {"fields": kw}
