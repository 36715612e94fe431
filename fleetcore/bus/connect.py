"""Connecting to NATS: reconnect forever, TLS for tls:// URLs, NKey auth from a seed file.

A wolf or the bot that gives up on the bus is a silent outage, so the client never stops
reconnecting; what cannot heal by retrying (a rejected NKey, an unreadable seed file) fails
at once with a clear error instead.

NKey auth is nats-py's own: it reads the seed file and signs the server's nonce with the
`nkeys` package. We read the file first only to fail early and clearly: a missing file, a
mistyped seed (the `nkeys` package does not check a seed's CRC, so a typo would otherwise
surface as a rejected key) and the public key to name in errors.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import inspect
import logging
import os
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats.errors
import nkeys
from nats.aio.client import Client

from fleetcore.bus.config import BusConfig
from fleetcore.log import fields
from fleetcore.retry import Backoff

log = logging.getLogger(__name__)

_SEED_RE = re.compile(r"^S[A-Z2-7]{57}$")
# The alerts a server with `verify: true` sends for a missing or untrusted client cert.
_CLIENT_CERT_REFUSED = frozenset(
    {
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "TLSV1_ALERT_UNKNOWN_CA",
    }
)


class NKeyError(ValueError):
    """A seed that is not a valid NKey seed. The message never contains the seed."""


class BusAuthError(ConnectionError):
    """The server rejected our credentials: retrying cannot fix it, so we stop."""


class BusTLSError(ConnectionError):
    """The server's certificate did not verify against the configured CA."""


def nkey_public_key(seed: str) -> str:
    """The public key (`U...` for a user) of an NKey seed, checking the seed on the way."""
    if not _SEED_RE.match(seed):
        raise NKeyError("not an NKey seed (58 base32 characters starting with S)")
    try:
        raw = base64.b32decode(seed + "=" * (-len(seed) % 8))
    except binascii.Error:
        raise NKeyError("not base32") from None
    if nkeys.crc16_checksum(raw[:-2]) != raw[-2:]:
        raise NKeyError("checksum mismatch (a mistyped or truncated key)")
    try:
        pair = nkeys.from_seed(bytearray(seed.encode()))
    except nkeys.NkeysError as exc:
        raise NKeyError(f"not an NKey seed ({exc})") from None
    try:
        return str(pair.public_key.decode())
    finally:
        pair.wipe()


@dataclass(frozen=True)
class NKeySeedFile:
    """A checked seed file: nats-py reads it again to sign; only the public key is kept."""

    path: Path
    public_key: str


def load_nkey_seed(path: Path) -> NKeySeedFile:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise NKeyError(f"cannot read the nkey seed file {path}: {type(exc).__name__}") from None
    try:
        public_key = nkey_public_key(text)
    except NKeyError as exc:
        # `from None`: the original may hold the decoded text in its context.
        raise NKeyError(f"{path} does not hold a valid NKey seed: {exc}") from None
    mode = path.stat().st_mode
    if mode & 0o077:
        log.warning(
            "nkey_seed_file_readable_by_others",
            extra=fields(path=str(path), mode=oct(mode & 0o777)),
        )
    return NKeySeedFile(path, public_key)


def tls_context(cfg: BusConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if cfg.tls_ca_file is not None:
        ctx.load_verify_locations(cafile=os.fspath(cfg.tls_ca_file))
    if cfg.tls_cert_file is not None and cfg.tls_key_file is not None:
        ctx.load_cert_chain(os.fspath(cfg.tls_cert_file), os.fspath(cfg.tls_key_file))
    return ctx


def reconnect_backoff(cfg: BusConfig) -> Backoff:
    """Doubling delay with jitter so a restarted server is not hit by every wolf at once."""
    return Backoff(cfg.reconnect_wait_s, cfg.reconnect_max_wait_s, jitter=0.5)


def _supports_reconnect_handler() -> bool:
    """Recent nats-py (2.16 has it) lets us pick the delay before each reconnect; older
    releases wait a fixed reconnect_time_wait, which is then the fallback."""
    return "reconnect_to_server_handler" in inspect.signature(Client.connect).parameters


Hook = Callable[[], Awaitable[None]]
ErrorHook = Callable[[Exception], Awaitable[None]]


async def connect(
    cfg: BusConfig,
    name: str,
    *,
    on_disconnected: Hook | None = None,
    on_reconnected: Hook | None = None,
    first_connect_timeout_s: float | None = None,
    inbox_prefix: str | None = None,
    on_error: ErrorHook | None = None,
) -> Client:
    """Connect as `name` (shown in server monitoring and in our logs).

    An agent passes its own `inbox_prefix`: its user may only subscribe there, so replies
    meant for it (tasks among them) are readable by no other agent. `on_error` sees what
    the server reports asynchronously: a permissions violation, or an authorization
    violation once our user is removed (the client then keeps retrying, refused).

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
        seed = load_nkey_seed(cfg.nkey_seed_file)
        opts["nkeys_seed"] = os.fspath(seed.path)
        credentials = f"nkey {seed.public_key} (from {seed.path})"
    if cfg.uses_tls:
        opts["tls"] = tls_context(cfg)
    if inbox_prefix is not None:
        opts["inbox_prefix"] = inbox_prefix
    if _supports_reconnect_handler():
        backoff = reconnect_backoff(cfg)

        def pick(servers: list[Any], _info: dict[str, Any]) -> tuple[Any, float]:
            chosen = min(servers, key=lambda s: s.reconnects)
            return chosen, backoff.delay(chosen.reconnects)

        opts["reconnect_to_server_handler"] = pick

    first: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def error_cb(exc: Exception) -> None:
        # Only the exception's type and nats-py's own text: neither carries credentials.
        log.warning(
            "nats_error", extra=fields(client=name, error=type(exc).__name__, detail=str(exc))
        )
        if on_error is not None:
            await on_error(exc)
        if first.done():
            return
        if _is_auth_error(exc):
            first.set_exception(BusAuthError(f"the NATS server rejected {name}'s {credentials}"))
        elif isinstance(exc, ssl.SSLCertVerificationError):
            ca = cfg.tls_ca_file or "the system CAs"
            first.set_exception(
                BusTLSError(f"the NATS server's certificate does not verify against {ca}: {exc}")
            )
        elif isinstance(exc, ssl.SSLError) and exc.reason in _CLIENT_CERT_REFUSED:
            ours = cfg.tls_cert_file or "none (tls_cert_file is not set)"
            first.set_exception(
                BusTLSError(
                    f"the NATS server refused {name}'s client certificate: {ours} "
                    f"({exc.reason}); it needs one signed by the fleet's CA"
                )
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
