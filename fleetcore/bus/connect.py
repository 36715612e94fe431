"""Connecting to NATS: reconnect forever, TLS for tls:// URLs, NKey auth from a seed file.

A wolf or the bot that gives up on the bus is a silent outage, so the client never stops
reconnecting; what cannot heal by retrying (a rejected NKey, an unreadable seed file) fails
at once with a clear error instead.

NKeys are decoded here (base32 + CRC-16/XMODEM, per the NKeys spec) and signed with pynacl,
which the project already depends on, rather than pulling in the `nkeys` package.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import logging
import os
import random
import re
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import nacl.signing
import nats.errors
from nats.aio.client import Client

from fleetcore.bus.config import BusConfig
from fleetcore.log import fields

log = logging.getLogger(__name__)

# Prefix bytes of the NKeys encoding (first base32 character: S, U, A, N, C, O).
PREFIX_SEED = 18 << 3
PREFIX_USER = 20 << 3
PREFIX_ACCOUNT = 0
PREFIX_SERVER = 13 << 3
PREFIX_CLUSTER = 2 << 3
PREFIX_OPERATOR = 14 << 3
_PUBLIC_PREFIXES = frozenset(
    {PREFIX_USER, PREFIX_ACCOUNT, PREFIX_SERVER, PREFIX_CLUSTER, PREFIX_OPERATOR}
)
_SEED_RE = re.compile(r"^S[A-Z2-7]{57}$")


class NKeyError(ValueError):
    """A seed that is not a valid NKey seed. The message never contains the seed."""


class BusAuthError(ConnectionError):
    """The server rejected our credentials: retrying cannot fix it, so we stop."""


class BusTLSError(ConnectionError):
    """The server's certificate did not verify against the configured CA."""


def crc16_xmodem(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def _b32encode(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=")


def _b32decode(text: str) -> bytes:
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8))
    except ValueError as exc:
        raise NKeyError("not base32") from exc


def _with_crc(raw: bytes) -> bytes:
    return raw + crc16_xmodem(raw).to_bytes(2, "little")


def _strip_crc(raw: bytes) -> bytes:
    if len(raw) < 3:
        raise NKeyError("too short")
    body, crc = raw[:-2], int.from_bytes(raw[-2:], "little")
    if crc16_xmodem(body) != crc:
        raise NKeyError("checksum mismatch (a mistyped or truncated key)")
    return body


def encode_public(prefix: int, key: bytes) -> str:
    if prefix not in _PUBLIC_PREFIXES or len(key) != 32:
        raise NKeyError("a public NKey is a known prefix and 32 key bytes")
    return _b32encode(_with_crc(bytes([prefix]) + key))


def decode_public(text: str) -> tuple[int, bytes]:
    body = _strip_crc(_b32decode(text))
    if len(body) != 33 or body[0] not in _PUBLIC_PREFIXES:
        raise NKeyError("not a public NKey")
    return body[0], body[1:]


def encode_seed(public_prefix: int, seed: bytes) -> str:
    if public_prefix not in _PUBLIC_PREFIXES or len(seed) != 32:
        raise NKeyError("a seed is a known public prefix and 32 seed bytes")
    head = bytes([PREFIX_SEED | (public_prefix >> 5), (public_prefix & 31) << 3])
    return _b32encode(_with_crc(head + seed))


def decode_seed(text: str) -> tuple[int, bytes]:
    """Return (public key prefix, 32-byte Ed25519 seed)."""
    if not _SEED_RE.match(text):
        raise NKeyError("not an NKey seed (58 base32 characters starting with S)")
    body = _strip_crc(_b32decode(text))
    if len(body) != 34 or body[0] & 0xF8 != PREFIX_SEED:
        raise NKeyError("not an NKey seed")
    public_prefix = ((body[0] & 7) << 5) | (body[1] >> 3)
    if public_prefix not in _PUBLIC_PREFIXES:
        raise NKeyError("seed of an unknown key type")
    return public_prefix, body[2:]


class NKeyPair:
    """A signing key that refuses to show its seed in reprs, logs or tracebacks."""

    def __init__(self, seed: str) -> None:
        prefix, raw = decode_seed(seed)
        self._signing = nacl.signing.SigningKey(raw)
        self.public_key = encode_public(prefix, bytes(self._signing.verify_key))

    def sign(self, data: bytes) -> bytes:
        return bytes(self._signing.sign(data).signature)

    def sign_nonce(self, nonce: str) -> bytes:
        """nats-py's signature callback: base64 of the Ed25519 signature of the nonce."""
        return base64.b64encode(self.sign(nonce.encode()))

    def __repr__(self) -> str:
        return f"NKeyPair(public_key={self.public_key!r})"


def load_nkey_seed(path: Path) -> NKeyPair:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise NKeyError(f"cannot read the nkey seed file {path}: {type(exc).__name__}") from None
    try:
        pair = NKeyPair(text)
    except NKeyError as exc:
        # `from None`: the original may hold the decoded text in its context.
        raise NKeyError(f"{path} does not hold a valid NKey seed: {exc}") from None
    mode = path.stat().st_mode
    if mode & 0o077:
        log.warning(
            "nkey_seed_file_readable_by_others",
            extra=fields(path=str(path), mode=oct(mode & 0o777)),
        )
    return pair


def tls_context(cfg: BusConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if cfg.tls_ca_file is not None:
        ctx.load_verify_locations(cafile=os.fspath(cfg.tls_ca_file))
    return ctx


def backoff_s(attempt: int, cfg: BusConfig) -> float:
    """Doubling delay with jitter so a restarted server is not hit by every wolf at once."""
    base = min(cfg.reconnect_max_wait_s, cfg.reconnect_wait_s * 2 ** min(attempt, 16))
    return float(base * random.uniform(0.5, 1.0))


def _supports_reconnect_handler() -> bool:
    """Recent nats-py (2.16 has it) lets us pick the delay before each reconnect; older
    releases wait a fixed reconnect_time_wait, which is then the fallback."""
    return "reconnect_to_server_handler" in inspect.signature(Client.connect).parameters


Hook = Callable[[], Awaitable[None]]


async def connect(
    cfg: BusConfig,
    name: str,
    *,
    on_disconnected: Hook | None = None,
    on_reconnected: Hook | None = None,
    first_connect_timeout_s: float | None = None,
) -> Client:
    """Connect as `name` (shown in server monitoring and in our logs).

    The first connection is retried like any reconnection (the server may still be starting),
    unless `first_connect_timeout_s` bounds it; a rejected key or an untrusted server
    certificate stops it at once, as no retry can fix those. Once connected, the client
    retries everything forever: a key or certificate may be fixed while it waits.
    """
    nc = Client()
    # A dict because nats-py annotates some of these as int though it takes seconds as floats.
    opts: dict[str, Any] = {"reconnect_time_wait": cfg.reconnect_wait_s}
    credentials = "connection (no nkey_seed_file is configured)"
    if cfg.nkey_seed_file is not None:
        pair = load_nkey_seed(cfg.nkey_seed_file)
        # nats-py only sends a public nkey that its own `nkeys`-based loader set; this is the
        # attribute it reads when building CONNECT. The NKey auth test guards the coupling.
        if not hasattr(nc, "_public_nkey"):
            raise RuntimeError("this nats-py no longer has Client._public_nkey; update connect.py")
        nc._public_nkey = pair.public_key
        opts["signature_cb"] = pair.sign_nonce
        credentials = f"nkey {pair.public_key} (from {cfg.nkey_seed_file})"
    if cfg.uses_tls:
        opts["tls"] = tls_context(cfg)
    if _supports_reconnect_handler():

        def pick(servers: list[Any], _info: dict[str, Any]) -> tuple[Any, float]:
            chosen = min(servers, key=lambda s: s.reconnects)
            return chosen, backoff_s(chosen.reconnects, cfg)

        opts["reconnect_to_server_handler"] = pick

    first: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def error_cb(exc: Exception) -> None:
        # Only the exception's type and nats-py's own text: neither carries credentials.
        log.warning(
            "nats_error", extra=fields(client=name, error=type(exc).__name__, detail=str(exc))
        )
        if first.done():
            return
        if _is_auth_error(exc):
            first.set_exception(BusAuthError(f"the NATS server rejected {name}'s {credentials}"))
        elif isinstance(exc, ssl.SSLCertVerificationError):
            ca = cfg.tls_ca_file or "the system CAs"
            first.set_exception(
                BusTLSError(f"the NATS server's certificate does not verify against {ca}: {exc}")
            )

    async def disconnected_cb() -> None:
        log.warning("nats_disconnected", extra=fields(client=name))
        if on_disconnected is not None:
            await on_disconnected()

    async def reconnected_cb() -> None:
        url = nc.connected_url
        log.info("nats_reconnected", extra=fields(client=name, server=url.netloc if url else None))
        if on_reconnected is not None:
            await on_reconnected()

    async def closed_cb() -> None:
        log.info("nats_closed", extra=fields(client=name))

    connecting = asyncio.ensure_future(
        nc.connect(
            servers=cfg.servers,
            name=name,
            error_cb=error_cb,
            disconnected_cb=disconnected_cb,
            reconnected_cb=reconnected_cb,
            closed_cb=closed_cb,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            **opts,
        )
    )
    try:
        done, _ = await asyncio.wait(
            {connecting, first},
            timeout=first_connect_timeout_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if connecting in done:
            connecting.result()
        elif first in done:
            first.result()
        else:
            raise TimeoutError(f"{name} could not reach NATS within {first_connect_timeout_s}s")
    except BaseException:
        connecting.cancel()
        with contextlib.suppress(BaseException):
            await connecting
        with contextlib.suppress(Exception):
            await nc.close()
        raise
    finally:
        if first.done() and not first.cancelled():
            first.exception()  # retrieved, so asyncio does not warn about it later
        else:
            first.cancel()
    log.info("nats_connected", extra=fields(client=name, server=_netloc(nc)))
    return nc


def _is_auth_error(exc: Exception) -> bool:
    # During the first connection nats-py reports the server's -ERR as a plain Error.
    return isinstance(exc, nats.errors.AuthorizationError) or (
        "authorization violation" in str(exc).lower()
    )


def _netloc(nc: Client) -> str | None:
    url = nc.connected_url
    return url.netloc if url else None
