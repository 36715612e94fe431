"""Every subject, stream, consumer and bucket name on the bus, in one place.

The bot and the wolves are separate processes that may run different versions; a name that
drifts between them silently loses work, so nothing else spells these strings.

Tasks go to `fleet.tasks.<tier>.<burn_id>`: the tier comes first so one wildcard filter
(`fleet.tasks.<tier>.>`) feeds a tier's wolves, and the burn comes last so one purge filter
(`fleet.tasks.*.<burn_id>`) withdraws a burn across every tier.
"""

from __future__ import annotations

import re

TASKS_STREAM = "FLEET_TASKS"
TASKS_PREFIX = "fleet.tasks"
TASKS_SUBJECTS = f"{TASKS_PREFIX}.>"

RESULTS_STREAM = "FLEET_RESULTS"
RESULTS_PREFIX = "fleet.results"
RESULTS_SUBJECTS = f"{RESULTS_PREFIX}.>"
BOT_RESULTS_CONSUMER = "bot-results"

WOLF_CONSUMER_PREFIX = "wolves-"

# What a wolf tells the bot about its state (core NATS, no stream): `fleet.status.<wolf>`.
STATUS_PREFIX = "fleet.status"
STATUS_SUBJECTS = f"{STATUS_PREFIX}.*"

AGENTS_BUCKET = "fleet_agents"
# Fleet-wide counters (comments posted per hour), shared by every wolf.
LIMITS_BUCKET = "fleet_limits"

# JetStream deduplicates on this header within the stream's duplicate window.
MSG_ID_HEADER = "Nats-Msg-Id"

# Characters that would change a subject's meaning (separator, wildcards) or break a
# consumer name, which the server also uses as a directory name.
_FORBIDDEN = frozenset(".*>/\\")


def check_token(value: str, what: str) -> str:
    """Reject a value that would not be exactly one subject token.

    A dot would split it into two tokens and a wildcard would widen a purge, so a burn id
    like `a.*` could withdraw other burns' tasks: this check is a safety boundary.
    """
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string")
    if len(value) > 128:
        raise ValueError(f"{what} is longer than 128 characters")
    bad = sorted({c for c in value if c in _FORBIDDEN or c.isspace() or not c.isprintable()})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise ValueError(
            f"{what} {value!r} cannot be a NATS subject token: it contains {shown} "
            "(dots, spaces, '*', '>' and slashes are not allowed)"
        )
    return value


def task_subject(tier: str, burn_id: str) -> str:
    return f"{TASKS_PREFIX}.{check_token(tier, 'tier')}.{check_token(burn_id, 'burn id')}"


def tier_filter(tier: str) -> str:
    """What a tier's shared consumer pulls from: every burn's tasks for that tier."""
    return f"{TASKS_PREFIX}.{check_token(tier, 'tier')}.>"


def burn_filter(burn_id: str) -> str:
    """What a withdrawal purges: one burn's tasks in every tier."""
    return f"{TASKS_PREFIX}.*.{check_token(burn_id, 'burn id')}"


def tier_consumer(tier: str) -> str:
    """One durable per tier, shared by all its wolves, so each task reaches one wolf."""
    return f"{WOLF_CONSUMER_PREFIX}{check_token(tier, 'tier')}"


def result_subject(project: str, wolf: str | None = None) -> str:
    """Where a result goes; a wolf reports under its own name, which nats-server lets
    only that wolf's user publish to, so the subject proves who sent it.

    Without `wolf`: the first protocol's subject, still inside the results stream.
    """
    base = f"{RESULTS_PREFIX}.{check_token(project, 'project')}"
    return base if wolf is None else f"{base}.{check_token(wolf, 'wolf')}"


def result_sender(subject: str) -> str | None:
    """The wolf a result's subject names, or None for a first-protocol subject."""
    tokens = subject.split(".")
    prefix = RESULTS_PREFIX.split(".")
    if tokens[: len(prefix)] != prefix or len(tokens) != len(prefix) + 2:
        return None
    return tokens[-1]


def status_subject(wolf: str) -> str:
    """Where a wolf's status goes: under its own name, which only its NATS user may
    publish to, so (as for results) the subject proves who sent it."""
    return f"{STATUS_PREFIX}.{check_token(wolf, 'wolf')}"


def status_sender(subject: str) -> str | None:
    """The wolf a status subject names, or None if it is not a status subject."""
    prefix = STATUS_PREFIX + "."
    wolf = subject.removeprefix(prefix)
    if wolf == subject or not wolf or "." in wolf:
        return None
    return wolf


AGENT_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def agent_key(name: str) -> str:
    """A wolf's key in the registry bucket.

    Stricter than a subject token because KV keys allow fewer characters and the same name
    appears in Gitea labels (`assigned:<name>`) and claim markers.
    """
    if not isinstance(name, str) or not AGENT_NAME_RE.match(name):
        raise ValueError(
            f"agent name {name!r} must be 1-64 letters, digits, '-' or '_' "
            "(it is a registry key and part of Gitea labels)"
        )
    return name
