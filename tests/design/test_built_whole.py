"""Static checks of the redesign's rules that a reader could otherwise only trust.

- One way out: nio's `room_send` is called in `bot/matrix/sender.py` only, so every message
  the bot posts gets its transaction id stored first, its 429s waited out and its room's
  order kept (`bot.matrix.sender`).
- Objects built whole: no "start() first" guard (an object usable only after a second call
  was not built whole: a factory such as `BurnService.open` returns it ready), and no hook
  set on another object after it was built (`self.matrix.on_new_device = ...`): what an
  object calls is given to its constructor.

Walked with `ast` over the product packages' sources, so a comment or a string never counts.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("bot", "agents", "fleetcore", "fleet")
SENDER = "bot/matrix/sender.py"
# Not the bot: the human operator's stand-in client (tests, `fleet demo`) speaks for itself.
ROOM_SEND_ELSEWHERE = {"fleet/local/operator.py"}
GUARD = re.compile(r"(start|open)\(\) first|not started|not opened", re.IGNORECASE)


def sources() -> Iterator[tuple[str, ast.Module]]:
    for package in PRODUCT:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            yield rel, ast.parse(path.read_text(encoding="utf-8"), filename=rel)


def test_the_product_sources_are_found() -> None:
    names = {rel for rel, _ in sources()}
    assert SENDER in names and "bot/app.py" in names and len(names) > 100


def room_send_calls(tree: ast.Module) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "room_send"
    ]


def test_room_send_is_called_by_the_sender_only() -> None:
    found = {rel: lines for rel, tree in sources() if (lines := room_send_calls(tree))}
    assert SENDER in found, "the sender no longer calls room_send: this check proves nothing"
    stray = {
        rel: lines for rel, lines in found.items() if rel not in {SENDER, *ROOM_SEND_ELSEWHERE}
    }
    assert not stray, f"room_send outside {SENDER} (send through bot.matrix.sender): {stray}"


def start_first_guards(tree: ast.Module) -> list[int]:
    """`assert x is not None, "start() first"` and `raise Error("not started")`."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            message = node.msg
        elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
            message = node.exc.args[0]
        else:
            continue
        if isinstance(message, ast.Constant) and isinstance(message.value, str):
            if GUARD.search(message.value):
                out.append(node.lineno)
    return out


def hooks_set_from_outside(tree: ast.Module) -> list[int]:
    """`other.on_x = ...`, or anything set on a part: `self.part.x = ...` (a callback, a
    trust source, a budget: given to the part after it was built)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):  # not `+=`: a part's own counters are fine
            targets = [node.target]
        else:
            continue
        for target in targets:
            if not isinstance(target, ast.Attribute):
                continue
            owner = target.value
            on_self = isinstance(owner, ast.Name) and owner.id in ("self", "cls")
            if target.attr.startswith("on_") and not on_self:
                out.append(node.lineno)
            elif isinstance(owner, ast.Attribute) and _rooted_at_self(owner):
                out.append(node.lineno)
    return out


def _rooted_at_self(node: ast.expr) -> bool:
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name) and node.id == "self"


def test_objects_are_built_whole() -> None:
    guards = {rel: lines for rel, tree in sources() if (lines := start_first_guards(tree))}
    hooks = {rel: lines for rel, tree in sources() if (lines := hooks_set_from_outside(tree))}
    assert not guards, f"'start() first' guards (build the object whole instead): {guards}"
    assert not hooks, f"hooks set after construction (pass them to the constructor): {hooks}"


def test_the_checks_catch_what_they_forbid() -> None:
    bad = ast.parse(
        "class App:\n"
        "    async def start(self):\n"
        "        self.matrix.on_new_device = self.announce\n"
        "        shell.on_notice = print\n"
        "        self.on_own = print\n"
        "        self.triager.alive = self.alive\n"
        "        live.row = row\n"
        "    async def run(self):\n"
        "        assert self.pipeline is not None, 'start() first'\n"
        "        await self.client.room_send(room, 'm.room.message', {})\n"
        "    def nio(self):\n"
        "        raise MatrixError('not started')\n"
    )
    assert hooks_set_from_outside(bad) == [3, 4, 6]
    assert start_first_guards(bad) == [9, 12]
    assert room_send_calls(bad) == [10]
