"""`fleet review list | clear @user`: crisis holds, from the machine the bot runs on.

For the single-operator case: an operator cannot lift their own hold from a room, and with
no second operator nobody else in a room can. Whoever can read the bot's state directory
(the person at the machine) can. Works while the bot runs: the hold store is SQLite, and
the bot reads it afresh for every message.
"""

from __future__ import annotations

import getpass
import logging
import sys

from bot.holds import HoldStore, describe_holds, holds_path
from fleetcore.config import USER_ID_RE, FleetConfig
from fleetcore.log import fields

log = logging.getLogger(__name__)


def review_main(cfg: FleetConfig, action: str, user: str | None = None) -> int:
    path = holds_path(cfg)
    if not path.exists():
        print(
            f"no holds database at {path}: has the bot run with this config? "
            "(nobody can be on hold before it has)",
            file=sys.stderr,
        )
        return 1
    store = HoldStore(path)
    try:
        if action == "list":
            print(describe_holds(store.list()))
            return 0
        assert action == "clear"
        if user is None or not USER_ID_RE.match(user):
            print(f"not a Matrix user ID: {user!r} (e.g. @sam:example.org)", file=sys.stderr)
            return 2
        by = f"local:{getpass.getuser()}"
        if not store.clear(user, by=by):
            print(f"{user} is not on hold.")
            return 1
        log.info("hold_cleared", extra=fields(user=user, by=by))
        print(f"Hold lifted for {user}. Their messages are routed normally again.")
        return 0
    finally:
        store.close()
