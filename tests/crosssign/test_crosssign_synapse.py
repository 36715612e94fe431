"""Cross-signing on a real Synapse: the bot's identity, and identity-TOFU trust of an operator.

Signatures seen by another client are checked here with nacl directly over hand-built
canonical bytes, not with the code under test.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from nacl.signing import VerifyKey
from nio import AsyncClient, AsyncClientConfig, JoinError, LoginResponse, SyncResponse

from bot.crosssign.api import (
    ensure_identity,
    query_keys,
    sign_device,
    upload_cross_signing_keys,
)
from bot.crosssign.cli import identity_report
from bot.crosssign.keys import CrossSigningKeys
from bot.crosssign.operators import OperatorTrust
from bot.crosssign.verify import IdentityPins
from bot.matrix.trust import apply_trust
from fleet.local.operator import OperatorClient

pytestmark = pytest.mark.e2e
_n = itertools.count()


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _canonical(obj: dict[str, Any]) -> bytes:
    body = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _only_key(obj: dict[str, Any]) -> str:
    ((_, public),) = obj["keys"].items()
    return str(public)


def assert_cross_signed_independently(body: dict[str, Any], user: str, device_id: str) -> str:
    """Checks a raw /keys/query body; returns the master public key."""
    master = _only_key(body["master_keys"][user])
    ssk_obj = body["self_signing_keys"][user]
    ssk = _only_key(ssk_obj)
    VerifyKey(_b64(master)).verify(
        _canonical(ssk_obj), _b64(ssk_obj["signatures"][user][f"ed25519:{master}"])
    )
    dev = body["device_keys"][user][device_id]
    VerifyKey(_b64(ssk)).verify(_canonical(dev), _b64(dev["signatures"][user][f"ed25519:{ssk}"]))
    return master


async def raw_query(url: str, token: str, user: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        resp = await http.post(
            f"{url}/_matrix/client/v3/keys/query",
            json={"device_keys": {user: []}},
            headers={"Authorization": f"Bearer {token}"},
        )
    resp.raise_for_status()
    data: dict[str, Any] = resp.json()
    return data


def _store(path: Path) -> str:
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


async def nio_login(url: str, user: str, password: str, store: Path) -> AsyncClient:
    client = AsyncClient(url, user, store_path=_store(store), config=AsyncClientConfig())
    resp = await client.login(password, device_name="crosssign-test")
    assert isinstance(resp, LoginResponse), resp
    await client.keys_upload()
    return client


@pytest.fixture
async def accounts(synapse: Any) -> AsyncIterator[Callable[[str], Any]]:
    async def make(prefix: str) -> Any:
        return await synapse.register(f"cs{prefix}{next(_n)}")

    yield make


async def test_bot_identity_lifecycle(synapse: Any, accounts: Any, tmp_path: Path) -> None:
    url = synapse.url
    bot = await accounts("bot")
    observer = await accounts("obs")
    state = tmp_path / "state"
    client = await nio_login(url, bot.user_id, bot.password, tmp_path / "store1")
    obs = await nio_login(url, observer.user_id, observer.password, tmp_path / "obs")
    try:
        first = await ensure_identity(
            url, client.access_token, bot.user_id, client.device_id, state, bot.password
        )
        assert first.problem is None
        assert first.created and first.uploaded and first.signed_now and first.device_signed
        key_file = state / "cross_signing.json"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        keys = CrossSigningKeys.load(state, bot.user_id)
        assert keys is not None

        # A second client sees the chain, checked independently of our code.
        body = await raw_query(url, obs.access_token, bot.user_id)
        master = assert_cross_signed_independently(body, bot.user_id, client.device_id)
        assert master == keys.master_public
        assert first.master_fingerprint == keys.fingerprint

        # Restart: same identity, nothing uploaded or signed again.
        again = await ensure_identity(
            url, client.access_token, bot.user_id, client.device_id, state, bot.password
        )
        assert (again.created, again.uploaded, again.signed_now) == (False, False, False)
        assert again.device_signed and again.master_fingerprint == keys.fingerprint

        report = await identity_report(
            url, client.access_token, bot.user_id, client.device_id, state
        )
        assert keys.fingerprint in report and "device signed:   yes" in report

        # Wiped device store: a new device, signed by the same identity.
        client2 = await nio_login(url, bot.user_id, bot.password, tmp_path / "store2")
        try:
            assert client2.device_id != client.device_id
            fresh = await ensure_identity(
                url, client2.access_token, bot.user_id, client2.device_id, state, bot.password
            )
            assert fresh.signed_now and not fresh.uploaded and not fresh.created
            body = await raw_query(url, obs.access_token, bot.user_id)
            assert assert_cross_signed_independently(body, bot.user_id, client2.device_id) == master
            assert assert_cross_signed_independently(body, bot.user_id, client.device_id) == master

            # Someone else resets the bot's identity (needs the password: UIA on replace).
            intruder = CrossSigningKeys.generate(bot.user_id)
            await upload_cross_signing_keys(
                url, client2.access_token, bot.user_id, intruder, bot.password
            )
            clash = await ensure_identity(
                url, client2.access_token, bot.user_id, client2.device_id, state, bot.password
            )
            assert clash.problem is not None and "someone reset" in clash.problem
            assert not clash.ok and clash.server_master_fingerprint == intruder.fingerprint
            assert bot.password not in clash.problem
            report = await identity_report(
                url, client2.access_token, bot.user_id, client2.device_id, state
            )
            assert "DIFFERENT" in report and "device signed:   no" in report

            # An explicit reset makes a new identity (UIA by password) and signs the device.
            back = await ensure_identity(
                url,
                client2.access_token,
                bot.user_id,
                client2.device_id,
                state,
                bot.password,
                reset=True,
            )
            assert back.ok and back.uploaded and back.created
            renewed = CrossSigningKeys.load(state, bot.user_id)
            assert renewed is not None and renewed.master_public not in (
                master,
                intruder.master_public,
            )
            assert (state / "cross_signing.json.replaced").exists()
            body = await raw_query(url, obs.access_token, bot.user_id)
            seen = assert_cross_signed_independently(body, bot.user_id, client2.device_id)
            assert seen == renewed.master_public

            # A lost key file is reported, not silently replaced.
            lost = await ensure_identity(
                url,
                client2.access_token,
                bot.user_id,
                client2.device_id,
                tmp_path / "empty",
                bot.password,
            )
            assert lost.problem is not None and "not in" in lost.problem
        finally:
            await client2.close()
    finally:
        await client.close()
        await obs.close()


async def test_wrong_password_on_reset_is_a_clear_error(
    synapse: Any, accounts: Any, tmp_path: Path
) -> None:
    from bot.crosssign.api import CrossSigningError

    bot = await accounts("pw")
    client = await nio_login(synapse.url, bot.user_id, bot.password, tmp_path / "s")
    try:
        keys = CrossSigningKeys.generate(bot.user_id)
        await upload_cross_signing_keys(synapse.url, client.access_token, bot.user_id, keys, None)
        other = CrossSigningKeys.generate(bot.user_id)
        with pytest.raises(CrossSigningError) as err:
            await upload_cross_signing_keys(
                synapse.url, client.access_token, bot.user_id, other, "wrong-password"
            )
        assert err.value.status in (401, 403) and "wrong-password" not in str(err.value)
        with pytest.raises(CrossSigningError, match="password"):
            await upload_cross_signing_keys(
                synapse.url, client.access_token, bot.user_id, other, None
            )
    finally:
        await client.close()


class SyncWaiter:
    """Wakes on every sync of a nio client, so tests wait on conditions, not on time."""

    def __init__(self, client: AsyncClient) -> None:
        self.event = asyncio.Event()
        client.add_response_callback(self._on_sync, SyncResponse)

    async def _on_sync(self, _resp: Any) -> None:
        self.event.set()

    async def until(self, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
        async def _wait() -> Any:
            while True:
                self.event.clear()
                value = predicate()
                if value:
                    return value
                await self.event.wait()

        return await asyncio.wait_for(_wait(), timeout)


async def test_operator_identity_trust_and_room_keys(
    synapse: Any, accounts: Any, tmp_path: Path
) -> None:
    url = synapse.url
    op_acc = await accounts("op")
    bot_acc = await accounts("bot")
    op = op_acc.user_id

    phone = OperatorClient(url, op, op_acc.password, tmp_path / "phone")
    bot = OperatorClient(url, bot_acc.user_id, bot_acc.password, tmp_path / "bot")
    laptop: OperatorClient | None = None
    await phone.login("phone")
    await bot.login("bot")
    waiter = SyncWaiter(bot.client)
    nio = bot.client
    try:
        # The operator sets up cross-signing from the phone, as Element would.
        op_keys = CrossSigningKeys.generate(op)
        phone_token, phone_dev = phone.client.access_token, phone.client.device_id
        await upload_cross_signing_keys(url, phone_token, op, op_keys, op_acc.password)
        await sign_device(url, phone_token, op, phone_dev, op_keys)

        room = await phone.create_encrypted_room("crosssign", [bot.user_id])
        await waiter.until(lambda: room in nio.invited_rooms)
        assert not isinstance(await nio.join(room), JoinError)
        await phone.wait_joined(room, bot.user_id)

        # A second, unsigned device of the operator.
        laptop = OperatorClient(url, op, op_acc.password, tmp_path / "laptop")
        await laptop.login("laptop")
        lap_dev = laptop.client.device_id

        async def refresh() -> None:
            if nio.should_query_keys:
                await nio.keys_query()

        def devices_known() -> bool:
            ids = {d.id for d in nio.device_store.active_user_devices(op)}
            return {phone_dev, lap_dev} <= ids

        async def known() -> None:
            while not devices_known():
                await refresh()
                if not devices_known():
                    await waiter.until(lambda: nio.should_query_keys or devices_known())

        await asyncio.wait_for(known(), 30)

        pins = IdentityPins.load(tmp_path / "pins.json")
        trust = OperatorTrust(url, nio.access_token, pins)

        async def decide_and_apply() -> dict[str, Any]:
            await trust.refresh([op])
            decisions = {}
            pairs = []
            for dev in nio.device_store.active_user_devices(op):
                d = trust.decide_device(op, dev)
                assert d is not None
                decisions[dev.id] = d
                pairs.append((dev, d))
            apply_trust(nio, pairs)
            return decisions

        async def bot_send(text: str) -> str:
            if not nio.rooms[room].members_synced:
                await nio.joined_members(room)
            resp = await nio.room_send(
                room,
                "m.room.message",
                {"msgtype": "m.notice", "body": text},
                ignore_unverified_devices=False,
            )
            return str(resp.event_id)

        decisions = await decide_and_apply()
        assert decisions[phone_dev].trusted and decisions[phone_dev].pinned_now
        assert not decisions[lap_dev].trusted and not decisions[lap_dev].master_changed
        assert pins.get(op) == op_keys.master_public
        assert nio.olm is not None
        phone_olm = nio.device_store[op][phone_dev]
        lap_olm = nio.device_store[op][lap_dev]
        assert nio.olm.is_device_verified(phone_olm) and nio.olm.is_device_blacklisted(lap_olm)

        first = await bot_send("for signed devices only")
        await phone.wait_for(lambda: any(s.event_id == first for s in phone.seen))
        await laptop.wait_for(lambda: first in laptop.undecryptable)
        assert not any(s.event_id == first for s in laptop.seen)

        # The operator's identity is replaced (e.g. an attacker with the password).
        new_keys = CrossSigningKeys.generate(op)
        await upload_cross_signing_keys(url, phone_token, op, new_keys, op_acc.password)
        await sign_device(url, phone_token, op, phone_dev, new_keys)
        decisions = await decide_and_apply()
        assert not decisions[phone_dev].trusted and decisions[phone_dev].master_changed
        notices = trust.take_announcements()
        assert len(notices) == 1 and f"!trust {op}" in notices[0]
        assert new_keys.fingerprint in notices[0]
        assert trust.take_announcements() == []

        second = await bot_send("nobody may read this")
        await phone.wait_for(lambda: second in phone.undecryptable)
        await laptop.wait_for(lambda: second in laptop.undecryptable)

        # `!trust @op`: the new identity is confirmed, its signed device trusted again.
        assert "Trusting the new identity" in trust.confirm(op)
        decisions = await decide_and_apply()
        assert decisions[phone_dev].trusted and not decisions[lap_dev].trusted
        third = await bot_send("confirmed")
        await phone.wait_for(lambda: any(s.event_id == third for s in phone.seen))
        await laptop.wait_for(lambda: third in laptop.undecryptable)
        assert IdentityPins.load(tmp_path / "pins.json").get(op) == new_keys.master_public
        assert trust(op, phone_olm) is True and trust(op, lap_olm) is False

        # Control: the laptop's failures above were the policy, not a broken setup.
        trust.allow_unsigned_devices = True
        decisions = await decide_and_apply()
        assert decisions[lap_dev].trusted
        fourth = await bot_send("unsigned allowed")
        await laptop.wait_for(lambda: any(s.event_id == fourth for s in laptop.seen))
    finally:
        for c in (phone, bot, laptop):
            if c is not None:
                await c.close()


async def test_query_keys_parses_cross_signing(synapse: Any, accounts: Any, tmp_path: Path) -> None:
    acc = await accounts("q")
    client = await nio_login(synapse.url, acc.user_id, acc.password, tmp_path / "s")
    try:
        before = await query_keys(synapse.url, client.access_token, [acc.user_id])
        assert before.master_public(acc.user_id) is None
        assert before.device(acc.user_id, client.device_id) is not None
        keys = CrossSigningKeys.generate(acc.user_id)
        await upload_cross_signing_keys(synapse.url, client.access_token, acc.user_id, keys, None)
        after = await query_keys(synapse.url, client.access_token, [acc.user_id])
        assert after.master_public(acc.user_id) == keys.master_public
        assert after.self_signing_public(acc.user_id) == keys.self_signing_public
        assert acc.user_id in after.user_signing_keys  # only visible to the user themself
        assert not after.is_cross_signed(acc.user_id, client.device_id)
    finally:
        await client.close()
