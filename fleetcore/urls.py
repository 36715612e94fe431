"""`HttpUrl`: a config value that must be an http(s) URL, kept as text without a trailing /."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlparse

from pydantic import AfterValidator


def http_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("not a URL (expected http:// or https://)")
    return value.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(http_url)]
