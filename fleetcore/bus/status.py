"""What a wolf tells the bot about itself besides results: today, "my whole model chain
is failing", so the burn's room learns why work has stalled while tasks wait to retry.

A status is a typed, versioned message like a result (fleetcore/bus/messages.py: unknown
fields ignored, an unknown state read as `WolfState.UNSPECIFIED` and ignored), signed by the
wolf's Nostr key in its own domain, and published under the wolf's own subject, which
only that wolf's NATS user may publish to (fleetcore/bus/auth.py).

It travels on core NATS, not in a stream: it is a notice about now, not a record. The
wolf sends it again at its next failure while the outage lasts, so a status lost while
the bot was away is made good then; the bot posts one notice per pause however many
arrive. The resumption needs no status: the bot reads it from the next result a model
wrote (`Result.provider`), which is what "work resumed" means.

What it says of each provider is a word (`503`, `timeout`), checked against a narrow
pattern here: never the provider's own error text, which can quote an API key.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from nats.aio.client import Client
from pydantic import Field, StrictFloat, StrictInt, StrictStr, StringConstraints, field_validator

from fleetcore.bus.messages import (
    AgentName,
    BurnId,
    Time,
    Version,
    _Message,
    check_wire_signature,
    sign_wire,
    utcnow,
)
from fleetcore.bus.subjects import status_subject
from fleetcore.identity.nostr import NostrKey

STATUS_VERSION = 1
# Its own signature domain: a signed status can never pass for a signed result.
STATUS_SIG_DOMAIN = b"hermes-fleet status signature v1\n"
MAX_PROVIDERS = 16

_PROVIDER = r"^[A-Za-z0-9_.-]{1,64}$"
# An HTTP status or a failure class (fleetcore.models.classify.Kind): nothing free-form.
_BRIEF = r"^([0-9]{3}|[a-z_]{1,24})$"
ProviderName = Annotated[StrictStr, StringConstraints(pattern=_PROVIDER)]
Brief = Annotated[StrictStr, StringConstraints(pattern=_BRIEF)]


class WolfState(StrEnum):
    MODELS_FAILING = "models_failing"  # every provider of the chain failed a task
    # A state newer than this version: the bot ignores it.
    UNSPECIFIED = "unspecified"


class WolfStatus(_Message):
    """One wolf's state, about the burn whose task showed it."""

    version: Version = STATUS_VERSION
    wolf: AgentName
    state: WolfState
    burn_id: BurnId
    # Each provider's last failure, in a word: {"openai": "503", "anthropic": "timeout"}.
    providers: dict[ProviderName, Brief] = Field(default_factory=dict, max_length=MAX_PROVIDERS)
    # How long the wolf waits before the task is tried again.
    retry_s: StrictFloat | StrictInt = Field(ge=0, le=86400)
    at: Time
    npub: StrictStr | None = None
    sig: StrictStr | None = None

    @field_validator("state", mode="before")
    @classmethod
    def _known_state(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in WolfState.__members__.values():
            return WolfState.UNSPECIFIED
        return value

    @classmethod
    def models_failing(
        cls, wolf: str, burn_id: str, providers: dict[str, str], retry_s: float
    ) -> WolfStatus:
        # A provider name or a word that does not fit is left out, not sent: the wolf
        # still tells the bot that its chain fails.
        fits = {
            name: word
            for name, word in providers.items()
            if re.match(_PROVIDER, name) and re.match(_BRIEF, word)
        }
        return cls.build(
            wolf=wolf,
            state=WolfState.MODELS_FAILING,
            burn_id=burn_id,
            providers=dict(list(fits.items())[:MAX_PROVIDERS]),
            retry_s=retry_s,
            at=utcnow(),
        )


def sign_status(status: WolfStatus, key: NostrKey) -> WolfStatus:
    return sign_wire(status, key, STATUS_SIG_DOMAIN)


def check_status_signature(data: bytes, npub: str | None) -> str | None:
    """Why the wire status `data` is not signed by `npub`; None if it is."""
    return check_wire_signature(data, npub, STATUS_SIG_DOMAIN)


async def publish_status(nc: Client, status: WolfStatus) -> None:
    """Send it on core NATS: best effort by design (see the module docstring)."""
    await nc.publish(status_subject(status.wolf), status.to_bytes())
