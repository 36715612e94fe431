"""The protocol around the detector, end to end: the reply reaches the person, alerts go
to the operators' room, and holds a human can lift without locking the fleet out."""

from __future__ import annotations

import io
import logging
from contextlib import redirect_stdout
from urllib.parse import quote

from fleet.review import review_main
from fleetcore.log import JsonFormatter

CRISIS = "I want to end my life tonight"


async def test_crisis_reply_reaches_a_non_operator_and_only_that_reply(  # type: ignore[no-untyped-def]
    fleet_factory, caplog
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    fleet = await fleet_factory(ops_room=True)
    op, out = fleet.operator, fleet.outsider
    ops_room = fleet.cfg.operators_room
    assert ops_room is not None
    room = await op.create_encrypted_room("shared", [fleet.bot_user, out.user_id])
    await op.wait_joined(room, fleet.bot_user)
    await out.join(room)
    await op.wait_joined(room, out.user_id)
    # Ordinary replies keep the trust policy: the outsider cannot read them.
    ping = await op.send_text(room, "!ping")
    await op.wait_reply(ping)

    event_id = await out.send_text(room, CRISIS)
    # The outsider's own client decrypts the protocol reply.
    reply = await out.wait_reply(event_id)
    assert reply.sender == fleet.bot_user
    assert "988" in reply.body and "safe" in reply.body.lower()
    assert (await op.wait_reply(event_id)).body == reply.body  # the operators see it too

    # The alert goes to the operators' room (made as `fleet up` makes it), not the shared one.
    link = quote(event_id, safe="")
    [alert] = await op.wait_for(
        lambda: [s for s in op.seen if s.room_id == ops_room and link in s.body]
    )
    assert out.user_id in alert.body and "end my life" not in alert.body
    assert not [s for s in op.seen if s.room_id == room and link in s.body]

    # The one-off session was rotated away: the next ordinary message in the room is one
    # the outsider cannot decrypt, while the operator can.
    later = await op.send_text(room, "!ping")
    pong = await op.wait_reply(later)
    assert pong.body == "pong"
    await out.wait_for(lambda: pong.event_id in out.undecryptable)
    assert not [s for s in out.seen if s.event_id == pong.event_id]

    logged = [JsonFormatter().format(r) for r in caplog.records if r.name.startswith("bot")]
    assert any("crisis_reply_one_off_session" in line for line in logged)
    assert not any("end my life" in line or "tonight" in line for line in logged)


async def test_a_hold_never_locks_out_the_fleet_and_a_human_at_the_machine_lifts_it(  # type: ignore[no-untyped-def]
    fleet,
) -> None:
    op = fleet.operator
    room = await op.create_encrypted_room("ops", [fleet.bot_user])
    await op.wait_joined(room, fleet.bot_user)

    first = await op.ask(room, "i want to end my life")
    assert "988" in first.body
    # Held: free text and commands that carry it stop at the guard...
    for text in ("hello?", "!issue the flaky test", "!burn", "!status please"):
        held = await op.ask(room, text)
        assert "988" in held.body and "paused" in held.body, text
    # ...fleet controls without free text keep working...
    assert (await op.ask(room, "!ping")).body == "pong"
    assert "Hermes fleet" in (await op.ask(room, "!status")).body
    assert "!review" in (await op.ask(room, "!help")).body
    listing = await op.ask(room, "!review list")
    assert op.user_id in listing.body and "1 on hold" in listing.body
    # ...but nobody lifts their own hold from a room.
    own = await op.ask(room, f"!review clear {op.user_id}")
    assert "can't lift your own hold" in own.body and "fleet review clear" in own.body

    # The single-operator case: a person at the machine lists and lifts it.
    shown = io.StringIO()
    with redirect_stdout(shown):
        assert review_main(fleet.cfg, "list") == 0
        assert review_main(fleet.cfg, "clear", op.user_id) == 0
    assert op.user_id in shown.getvalue() and "Hold lifted" in shown.getvalue()
    routed = await op.ask(room, "!pnig")
    assert "Unknown command" in routed.body
    assert "No one is on hold" in (await op.ask(room, "!review list")).body


async def test_reply_fallbacks_are_not_screened_and_edits_screen_the_new_text(fleet) -> None:  # type: ignore[no-untyped-def]
    second = fleet.operator2
    reviewer = await fleet.new_client(second, "reviewer")
    op = fleet.operator
    try:
        room = await op.create_encrypted_room("ops", [fleet.bot_user, second.user_id])
        await op.wait_joined(room, fleet.bot_user)
        await reviewer.join(room)
        await op.wait_joined(room, second.user_id)

        crisis_line = "i want to end my life"
        crisis_event = await op.send_text(room, crisis_line)
        await op.wait_reply(crisis_event)

        # An Element reply to the crisis line quotes it in its fallback: the reply is about
        # the new text only, so the person answering is not held.
        answer = await reviewer.send_content(
            room,
            {
                "msgtype": "m.text",
                "body": f"> <{op.user_id}> {crisis_line}\n\n!ping",
                "format": "org.matrix.custom.html",
                "formatted_body": (
                    f'<mx-reply><blockquote><a href="https://matrix.to/#/{room}/'
                    f'{crisis_event}">In reply to</a> <a href="https://matrix.to/#/'
                    f'{op.user_id}">{op.user_id}</a><br />{crisis_line}</blockquote>'
                    "</mx-reply>!ping"
                ),
                "m.relates_to": {"m.in_reply_to": {"event_id": crisis_event}},
            },
        )
        assert (await reviewer.wait_reply(answer)).body == "pong"
        listing = await reviewer.ask(room, "!review list")
        assert op.user_id in listing.body and second.user_id not in listing.body

        # An edit is screened on its new content (and never run as a command again).
        original = await reviewer.send_text(room, "!ping")
        await reviewer.wait_reply(original)
        edit = await reviewer.send_content(
            room,
            {
                "msgtype": "m.text",
                "body": "* I'm going to end my life tonight",
                "m.new_content": {"msgtype": "m.text", "body": "I'm going to end my life tonight"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": original},
            },
        )
        reply = await reviewer.wait_reply(edit)
        assert "988" in reply.body
        listing = await op.ask(room, "!review list")
        assert second.user_id in listing.body
    finally:
        await reviewer.close()
