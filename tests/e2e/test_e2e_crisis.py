"""The crisis protocol end to end: guard first, hold, alert without text, review."""

from __future__ import annotations

import logging
from urllib.parse import quote

from fleetcore.log import JsonFormatter

CRISIS_COMMAND = "!issue I can't do this anymore, I want to kill myself tonight"


async def test_crisis_message_is_answered_held_and_never_executed(fleet, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG, logger="bot")
    room = await fleet.operator.create_encrypted_room("ops", [fleet.bot_user])
    await fleet.operator.wait_joined(room, fleet.bot_user)

    event_id = await fleet.operator.send_text(room, CRISIS_COMMAND)
    reply = await fleet.operator.wait_reply(event_id)
    assert "988" in reply.body and "741741" in reply.body and "findahelpline.com" in reply.body
    assert "safe" in reply.body.lower()
    # Not executed: no `!issue` handling, and the only reply is the protocol's.
    assert len(fleet.operator.replies_to(event_id)) == 1
    assert "Unknown command" not in reply.body

    # The alert (no operators_room configured: it goes to the same room) names the
    # sender and links the event, and does not contain the text.
    link = quote(event_id, safe="")
    alert = await fleet.operator.wait_for(
        lambda: [s for s in fleet.operator.seen if link in s.body and s.reply_to is None]
    )
    assert fleet.operator.user_id in alert[0].body
    assert "kill myself" not in alert[0].body and "tonight" not in alert[0].body

    # Held: what the held sender writes is not routed, it gets the lines again; fleet
    # controls without free text still work.
    held = await fleet.operator.ask(room, "are you there?")
    assert "988" in held.body
    assert (await fleet.operator.ask(room, "!ping")).body == "pong"

    # The hold survives a restart.
    await fleet.runner.restart()
    held_again = await fleet.operator.ask(room, "!pnig")
    assert "Unknown command" not in held_again.body and "988" in held_again.body

    # Logs never held the text: the bot's holds database has no trace of it either.
    holds_db = fleet.cfg.bot_dir / "holds.db"
    assert b"kill myself" not in holds_db.read_bytes()
    logged = [JsonFormatter().format(r) for r in caplog.records if r.name.startswith("bot")]
    assert any("crisis_detected" in line for line in logged)
    assert not any("kill myself" in line or "tonight" in line for line in logged)


async def test_review_clear_lifts_a_hold(fleet) -> None:  # type: ignore[no-untyped-def]
    # A second operator reviews; the first is held.
    second = fleet.operator2
    reviewer = await fleet.new_client(second, "reviewer")
    try:
        room = await fleet.operator.create_encrypted_room("ops", [fleet.bot_user, second.user_id])
        await fleet.operator.wait_joined(room, fleet.bot_user)
        await reviewer.join(room)
        await fleet.operator.wait_joined(room, second.user_id)

        await fleet.operator.ask(room, "i want to end my life")
        listing = await reviewer.ask(room, "!review list")
        assert fleet.operator.user_id in listing.body
        held = await fleet.operator.ask(room, "!pnig")
        assert "988" in held.body
        cleared = await reviewer.ask(room, f"!review clear {fleet.operator.user_id}")
        assert "lifted" in cleared.body
        routed = await fleet.operator.ask(room, "!pnig")
        assert "Unknown command" in routed.body
    finally:
        await reviewer.close()


async def test_violent_dev_words_are_handled_normally(fleet) -> None:  # type: ignore[no-untyped-def]
    room = await fleet.operator.create_encrypted_room("ops", [fleet.bot_user])
    await fleet.operator.wait_joined(room, fleet.bot_user)
    # `!ping` takes no words: the answer is its usage line, not the crisis protocol.
    reply = await fleet.operator.ask(
        room, "!ping kill -9 the dead worker, this bug is killing me, execute the script"
    )
    assert "988" not in reply.body and "Usage: `!ping`" in reply.body
    assert (await fleet.operator.ask(room, "!ping")).body == "pong"  # and nobody is held
