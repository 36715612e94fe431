"""Head of line: a slow model answer in one room holds nothing in another.

Room A asks the model a question that the fake provider holds unanswered. While it is held,
`!ping` in room B is answered and a crisis message in room B gets the protocol reply; only
then is the model released, and room A's answer arrives too. The assertions are on order
(B answered while A's request is provably still pending), never on wall time.
"""

from __future__ import annotations

import pytest

import fleettest.models_fake as fakes
from fleetcore.safety.modelgate import readiness_path
from fleetcore.safety.modeltest import ReadinessStore


@pytest.mark.timeout(180)
async def test_slow_model_in_one_room_holds_nothing_in_another(fleet_factory) -> None:  # type: ignore[no-untyped-def]
    async with fakes.FakeProvider("openai", fakes.hang()) as model:
        fleet = await fleet_factory(
            fallback_providers=[
                {"provider": "fake", "model": "fake-1", "base_url": model.base_url}
            ],
            chain={"first_byte_timeout_s": 120, "total_timeout_s": 150},
        )
        ReadinessStore(readiness_path(fleet.cfg)).set("fake", True)
        op = fleet.operator
        room_a = await op.create_encrypted_room("slow", [fleet.bot_user])
        room_b = await op.create_encrypted_room("quick", [fleet.bot_user])
        await op.wait_joined(room_a, fleet.bot_user)
        await op.wait_joined(room_b, fleet.bot_user)

        question = await op.send_text(room_a, "what should we work on next?")
        await model.wait_requests(1, timeout=30)

        pong = await op.ask(room_b, "!ping")
        assert pong.body == "pong"
        crisis = await op.ask(room_b, "i want to end my life tonight")
        assert "988" in crisis.body
        # Both came back while room A's model call was still held open.
        assert op.replies_to(question) == []
        assert len(model.requests) == 1

        model.release()
        answer = await op.wait_reply(question, timeout=60)
        assert answer.body  # the held answer arrives once the model lets go
