from bot.pipeline.access import Access, authorize, refusal
from bot.pipeline.message import Incoming

OPS = frozenset({"@op:localhost"})


def _msg(sender: str, *, encrypted: bool = True, trusted: bool = True) -> Incoming:
    return Incoming("!r:localhost", "$e", sender, 0, "!ping", encrypted, "DEV", trusted)


def test_operator_on_trusted_device_is_allowed() -> None:
    assert authorize(_msg("@op:localhost"), OPS).allowed


def test_non_operator_is_refused_politely() -> None:
    decision = authorize(_msg("@eve:localhost"), OPS)
    assert decision.access is Access.NOT_OPERATOR
    assert "Nothing was run" in refusal(decision)


def test_operator_on_untrusted_device_is_refused() -> None:
    decision = authorize(_msg("@op:localhost", trusted=False), OPS)
    assert decision.access is Access.UNTRUSTED_DEVICE
    assert "not verified" in refusal(decision)


def test_incoming_repr_never_shows_body() -> None:
    msg = _msg("@op:localhost")
    assert "!ping" not in repr(msg)
