"""The client-server API calls cross-signing needs, over httpx (`/_matrix/client/v3`).

nio has none of these, so they are plain HTTP with the bot's access token. Nothing here logs
or raises with a key, a password or a token in it: errors carry the endpoint, the HTTP status
and the server's errcode/error only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bot.crosssign.keys import CrossSigningKeys, fingerprint
from bot.crosssign.verify import cross_signing_key, device_is_cross_signed
from fleetcore.log import fields
from fleetcore.secrets import write_private

log = logging.getLogger(__name__)

_PREFIX = "/_matrix/client/v3"
_MAX_RATE_LIMIT_WAIT_S = 10.0


class CrossSigningError(RuntimeError):
    """The homeserver refused a cross-signing call (status, errcode, server message)."""

    def __init__(self, what: str, status: int, errcode: str | None, error: str | None) -> None:
        self.status = status
        self.errcode = errcode
        detail = f"{errcode}: {error}" if errcode else (error or "no detail")
        super().__init__(f"{what} failed: HTTP {status} ({detail})")


@dataclass(frozen=True)
class KeysQuery:
    """A parsed `/keys/query` answer; objects are kept raw because signatures cover them."""

    device_keys: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    master_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    self_signing_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    user_signing_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, body: dict[str, Any]) -> KeysQuery:
        def objects(name: str) -> dict[str, Any]:
            value = body.get(name)
            return (
                {k: v for k, v in value.items() if isinstance(v, dict)}
                if isinstance(value, dict)
                else {}
            )

        return cls(
            device_keys={u: d for u, d in objects("device_keys").items()},
            master_keys=objects("master_keys"),
            self_signing_keys=objects("self_signing_keys"),
            user_signing_keys=objects("user_signing_keys"),
            failures=body.get("failures") or {},
        )

    def device(self, user_id: str, device_id: str) -> dict[str, Any] | None:
        found = self.device_keys.get(user_id, {}).get(device_id)
        return found if isinstance(found, dict) else None

    def master_public(self, user_id: str) -> str | None:
        return cross_signing_key(self.master_keys.get(user_id), user_id, "master")

    def self_signing_public(self, user_id: str) -> str | None:
        return cross_signing_key(self.self_signing_keys.get(user_id), user_id, "self_signing")

    def is_cross_signed(self, user_id: str, device_id: str) -> bool:
        return device_is_cross_signed(
            self.device(user_id, device_id),
            self.self_signing_keys.get(user_id),
            self.master_keys.get(user_id),
        )


class _Api:
    """One httpx client for a burst of calls; retries 429s as the server asks."""

    def __init__(self, hs_url: str, access_token: str, timeout: float = 30.0) -> None:
        self._http = httpx.AsyncClient(
            base_url=hs_url.rstrip("/") + _PREFIX,
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=timeout,
        )

    async def __aenter__(self) -> _Api:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def post(self, what: str, path: str, body: dict[str, Any]) -> httpx.Response:
        for _ in range(5):
            resp = await self._http.post(path, json=body)
            if resp.status_code != 429:
                return resp
            wait_ms = _json(resp).get("retry_after_ms", 1000)
            wait = min(
                float(wait_ms) / 1000 if isinstance(wait_ms, int | float) else 1.0,
                _MAX_RATE_LIMIT_WAIT_S,
            )
            log.info("crosssign_rate_limited", extra=fields(call=what, wait_s=wait))
            await asyncio.sleep(wait)
        return resp

    async def post_ok(self, what: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = await self.post(what, path, body)
        if resp.status_code != 200:
            raise _error(what, resp)
        return _json(resp)


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _error(what: str, resp: httpx.Response) -> CrossSigningError:
    data = _json(resp)
    errcode = data.get("errcode")
    error = data.get("error")
    return CrossSigningError(
        what,
        resp.status_code,
        errcode if isinstance(errcode, str) else None,
        error if isinstance(error, str) else None,
    )


# -- the calls ----------------------------------------------------------------------------


async def _query(api: _Api, user_ids: Iterable[str]) -> KeysQuery:
    body: dict[str, Any] = {"device_keys": {u: [] for u in user_ids}}
    return KeysQuery.parse(await api.post_ok("keys query", "/keys/query", body))


async def query_keys(hs_url: str, access_token: str, user_ids: Iterable[str]) -> KeysQuery:
    """`POST /keys/query` for all devices and cross-signing keys of `user_ids`."""
    async with _Api(hs_url, access_token) as api:
        return await _query(api, user_ids)


async def _upload(api: _Api, user_id: str, keys: CrossSigningKeys, password: str | None) -> None:
    what = "cross-signing key upload"
    path = "/keys/device_signing/upload"
    body = keys.upload_body()
    resp = await api.post(what, path, body)
    if resp.status_code == 200:
        return
    data = _json(resp)
    if resp.status_code != 401 or "flows" not in data:
        raise _error(what, resp)
    # User-interactive auth: first-time setup needs none on current servers (MSC3967), a
    # replacement of existing keys does; we can only do the password stage.
    stages = [f.get("stages", []) for f in data.get("flows", []) if isinstance(f, dict)]
    if not any(s == ["m.login.password"] for s in stages):
        raise CrossSigningError(
            what, 401, "M_FORBIDDEN", "server offers no password-only auth flow"
        )
    if not password:
        raise CrossSigningError(what, 401, "M_FORBIDDEN", "server asks for the account password")
    body["auth"] = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user_id},
        "password": password,
        "session": data.get("session"),
    }
    resp = await api.post(what, path, body)
    if resp.status_code != 200:
        raise _error(what, resp)


async def upload_cross_signing_keys(
    hs_url: str,
    access_token: str,
    user_id: str,
    keys: CrossSigningKeys,
    password: str | None,
) -> None:
    """`POST /keys/device_signing/upload`, answering user-interactive auth with the password."""
    async with _Api(hs_url, access_token) as api:
        await _upload(api, user_id, keys, password)


async def _upload_signatures(api: _Api, body: dict[str, dict[str, Any]]) -> None:
    what = "signature upload"
    data = await api.post_ok(what, "/keys/signatures/upload", body)
    failures = data.get("failures") or {}
    if failures:
        # Report the first failure's errcode only; the objects themselves are not secret but
        # add nothing for the reader.
        first: dict[str, Any] = {}
        for per_user in failures.values():
            if isinstance(per_user, dict):
                for item in per_user.values():
                    if isinstance(item, dict):
                        first = item
                        break
        raise CrossSigningError(what, 200, first.get("errcode"), first.get("error"))


async def _sign_device(
    api: _Api, user_id: str, device_id: str, keys: CrossSigningKeys, query: KeysQuery
) -> None:
    device = query.device(user_id, device_id)
    if device is None:
        raise CrossSigningError(
            "device signing",
            404,
            "M_NOT_FOUND",
            f"device {device_id} has no uploaded keys yet (upload device keys first)",
        )
    signed = keys.sign_device(device)
    await _upload_signatures(api, {user_id: {device_id: signed}})


async def sign_device(
    hs_url: str, access_token: str, user_id: str, device_id: str, keys: CrossSigningKeys
) -> None:
    """Sign our own device with the self-signing key (`POST /keys/signatures/upload`)."""
    async with _Api(hs_url, access_token) as api:
        query = await _query(api, [user_id])
        await _sign_device(api, user_id, device_id, keys, query)


async def sign_user(
    hs_url: str, access_token: str, keys: CrossSigningKeys, other_user: str
) -> None:
    """Sign another user's master key with our user-signing key (as "verifying" them does).

    Optional: Element then shows the operator as verified by the bot. Call it only for a
    pinned (trusted) identity.
    """
    async with _Api(hs_url, access_token) as api:
        query = await _query(api, [other_user])
        master = query.master_keys.get(other_user)
        public = cross_signing_key(master, other_user, "master")
        if master is None or public is None:
            raise CrossSigningError("user signing", 404, "M_NOT_FOUND", "no master key")
        await _upload_signatures(api, {other_user: {public: keys.sign_user(master)}})


# -- the bot's identity at start ------------------------------------------------------------


@dataclass(frozen=True)
class IdentityResult:
    """What `ensure_identity` found and did. Fingerprints are public keys, safe to print."""

    master_fingerprint: str | None
    server_master_fingerprint: str | None
    created: bool = False
    uploaded: bool = False
    device_signed: bool = False
    signed_now: bool = False
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None and self.device_signed


async def ensure_identity(
    hs_url: str,
    access_token: str,
    user_id: str,
    device_id: str,
    store_dir: Path,
    password: str | None,
    *,
    reset: bool = False,
) -> IdentityResult:
    """Make sure the bot has a cross-signing identity on the server and its device is signed.

    First start: create, save (before upload, so a crash never loses an uploaded identity),
    upload, sign. Later starts: reuse; sign a new device; do nothing when already signed.
    When the server's identity is not ours (reset by someone else, or our key file lost), do
    NOT replace it silently: return a result with `problem` set. `reset=True` (an explicit
    operator action) replaces the server's identity with a NEW one (operators must verify the
    bot again; the previous key file is kept as `cross_signing.json.replaced`).

    Call it after nio's `keys_upload()`: the device must have published its keys.
    """
    async with _Api(hs_url, access_token) as api:
        keys = CrossSigningKeys.load(store_dir, user_id)
        query = await _query(api, [user_id])
        server_master = query.master_public(user_id)
        server_ssk = query.self_signing_public(user_id)
        server_fp = fingerprint(server_master) if server_master else None
        created = uploaded = False

        if keys is None and server_master is not None and not reset:
            problem = (
                f"the homeserver has a cross-signing identity for {user_id} (master key "
                f"{server_fp}) but its private keys are not in {store_dir}; the device stays "
                f"unsigned. Restore the key file, or reset the identity (operators must then "
                f"verify the bot again)."
            )
            log.error("crosssign_keys_missing", extra=fields(user=user_id, server_master=server_fp))
            return IdentityResult(None, server_fp, problem=problem)

        if keys is None:
            keys, created = CrossSigningKeys.load_or_generate(store_dir, user_id)
            log.info("crosssign_created", extra=fields(user=user_id, master=keys.fingerprint))

        mismatch = server_master is not None and (
            server_master != keys.master_public or server_ssk != keys.self_signing_public
        )
        if mismatch and not reset:
            problem = (
                f"the homeserver's cross-signing identity for {user_id} (master key {server_fp}) "
                f"is not the one in {store_dir} (master key {keys.fingerprint}): someone reset "
                f"it. The device stays unsigned; find out who did it, then reset the identity."
            )
            log.error(
                "crosssign_master_mismatch",
                extra=fields(user=user_id, server_master=server_fp, local_master=keys.fingerprint),
            )
            return IdentityResult(keys.fingerprint, server_fp, problem=problem)

        if mismatch and not created:
            # A reset always makes a NEW identity: a key once replaced cannot come back
            # (Synapse keeps every cross-signing public key it has seen in its device table
            # and fails with a 500 when one is uploaded again). The old file is kept aside.
            old = CrossSigningKeys.path_in(store_dir)
            if old.exists():
                write_private(old.with_name(old.name + ".replaced"), old.read_bytes())
            keys = CrossSigningKeys.generate(user_id)
            keys.save(store_dir)
            created = True
            log.warning("crosssign_reset", extra=fields(user=user_id, master=keys.fingerprint))

        if server_master is None or mismatch:
            await _upload(api, user_id, keys, password)
            uploaded = True
            log.info("crosssign_uploaded", extra=fields(user=user_id, master=keys.fingerprint))
            query = await _query(api, [user_id])
            server_fp = keys.fingerprint

        if query.device(user_id, device_id) is None:
            problem = f"device {device_id} has no uploaded keys yet; upload device keys first"
            return IdentityResult(keys.fingerprint, server_fp, created, uploaded, problem=problem)

        if query.is_cross_signed(user_id, device_id):
            return IdentityResult(keys.fingerprint, server_fp, created, uploaded, True, False)

        await _sign_device(api, user_id, device_id, keys, query)
        query = await _query(api, [user_id])
        signed = query.is_cross_signed(user_id, device_id)
        log.info("crosssign_device_signed", extra=fields(user=user_id, device=device_id, ok=signed))
        return IdentityResult(
            keys.fingerprint,
            server_fp,
            created,
            uploaded,
            signed,
            signed,
            problem=None if signed else "the signature was accepted but does not verify",
        )
