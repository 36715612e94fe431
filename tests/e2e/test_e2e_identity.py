"""Issue 3 in the running bot: its device is cross-signed; operators are trusted by identity."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import yaml

from bot.crosssign.api import query_keys, sign_device, upload_cross_signing_keys
from bot.crosssign.keys import CrossSigningKeys


async def give_identity(client, password: str) -> CrossSigningKeys:  # type: ignore[no-untyped-def]
    """What Element does when an operator sets up cross-signing on their phone."""
    nio = client.client
    keys = CrossSigningKeys.generate(nio.user_id)
    hs = nio.homeserver
    await upload_cross_signing_keys(hs, nio.access_token, nio.user_id, keys, password)
    await sign_device(hs, nio.access_token, nio.user_id, nio.device_id, keys)
    return keys


async def test_bot_device_is_signed_and_identity_command_reports_it(
    fleet_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    fleet = await fleet_factory(trust={"policy": "identity-tofu"})
    app = fleet.runner.app
    op = fleet.operator.client
    seen = await query_keys(fleet.homeserver, op.access_token, [fleet.bot_user])
    assert seen.is_cross_signed(fleet.bot_user, app.matrix.device_id)

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(fleet.cfg.model_dump(mode="json", exclude_none=True)))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fleet.cli",
        "bot",
        "identity",
        "--config",
        str(path),
        stdout=asyncio.subprocess.PIPE,
    )
    out_b, _ = await proc.communicate()
    out = out_b.decode()
    assert proc.returncode == 0, out
    keys = CrossSigningKeys.load(fleet.cfg.bot_dir, fleet.bot_user)
    assert keys is not None and keys.fingerprint in out
    assert "device signed:   yes" in out

    # A restart keeps the identity and the device.
    await fleet.runner.restart()
    again = CrossSigningKeys.load(fleet.cfg.bot_dir, fleet.bot_user)
    assert again is not None and again.master_public == keys.master_public


async def test_cross_signed_operator_is_trusted_and_unsigned_one_is_not(fleet_factory) -> None:  # type: ignore[no-untyped-def]
    fleet = await fleet_factory(trust={"policy": "identity-tofu"})
    op2 = fleet.operator2
    signed_client = await fleet.new_client(op2, "phone")
    try:
        await give_identity(signed_client, op2.password)
        room = await fleet.operator.create_encrypted_room("ops", [fleet.bot_user, op2.user_id])
        await fleet.operator.wait_joined(room, fleet.bot_user)
        await signed_client.join(room)

        # The cross-signed operator gets room keys: the reply decrypts.
        pong = await signed_client.ask(room, "!ping")
        assert pong.body == "pong"

        # The operator without cross-signing is not trusted: the bot answers, but its
        # device holds no room key, so the reply stays undecryptable for it.
        event_id = await fleet.operator.send_text(room, "!ping")
        refusal = await signed_client.wait_reply(event_id)
        assert "not verified by your cross-signing identity" in refusal.body
        assert fleet.operator.replies_to(event_id) == []
        assert fleet.operator.undecryptable
    finally:
        await signed_client.close()


async def test_replaced_master_key_is_announced_and_untrusted_until_trust(fleet_factory) -> None:  # type: ignore[no-untyped-def]
    fleet = await fleet_factory(trust={"policy": "identity-tofu"})
    first = fleet.operator
    await give_identity(first, first.password)
    second = await fleet.new_client(fleet.operator2, "phone")
    try:
        await give_identity(second, fleet.operator2.password)
        room = await first.create_encrypted_room("ops", [fleet.bot_user, second.user_id])
        await first.wait_joined(room, fleet.bot_user)
        await second.join(room)
        assert (await second.ask(room, "!ping")).body == "pong"
        assert (await first.ask(room, "!ping")).body == "pong"

        # The second operator's identity is replaced (a reset, or an attacker).
        await give_identity(second, fleet.operator2.password)
        notice = await first.wait_for(
            lambda: [s for s in first.seen if second.user_id in s.body and "!trust" in s.body],
            timeout=60,
        )
        assert notice
        event_id = await second.send_text(room, "!ping")
        refusal = await first.wait_reply(event_id)
        assert "not verified" in refusal.body

        confirmed = await first.ask(room, f"!trust {second.user_id}")
        assert "Trusting the new identity" in confirmed.body
        assert (await second.ask(room, "!ping")).body == "pong"
    finally:
        await second.close()
