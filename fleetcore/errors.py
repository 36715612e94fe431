"""The root of the fleet's own errors: each one knows what to say in a chat room.

An error that reaches a person (a room command that failed, a burn that could not start)
must say what happened in words they can act on, and nothing they should not see (no
traceback, no secret, no wall of text they typed). `str(exc)` is the detail for logs;
`room_message` is the line for the room, and defaults to the same text. The bot maps these
once, where commands execute; anything that is not a `FleetError` is a bug and is reported
as one.
"""

from __future__ import annotations


class FleetError(Exception):
    """An expected failure with a message fit for a room."""

    @property
    def room_message(self) -> str:
        return str(self)
