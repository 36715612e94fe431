"""Hypothesis strategies shared by the hostile-input tests: JSON, text, and mutated payloads.

Sizes are bounded (a few hundred nodes, a few KB of text): these tests look for crashes
and wrong kinds of error, not for slowness, which tests/hostile/README.md covers apart.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Text with the characters that break parsers: quotes of every kind, brackets, backslashes,
# control and format characters (RTL override, zero-width), lone surrogates, non-BMP.
NASTY_CHARS = (
    "\"'“”‘’`\\[]{}<>!#@:-=_ \t\n\r\x00\x7f\u202e\u202d\u200b\u200d\ufeff\u2028\ud800\udfffé漢🙂"
)
texts = st.text(alphabet=st.sampled_from(NASTY_CHARS) | st.characters(), max_size=300)
keys = st.text(max_size=12) | st.sampled_from(
    ["action", "issue", "number", "title", "repository", "full_name", "sender", "login",
     "comment", "body", "labels", "assignees", "assignee", "name", "html_url", "version"]
)  # fmt: skip
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | texts
)
json_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=5),
    max_leaves=40,
)


def paths_of(value: Any) -> list[tuple[Any, ...]]:
    """Every place in a JSON value (iteratively: the values may be deep)."""
    out: list[tuple[Any, ...]] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [((), value)]
    while stack:
        path, node = stack.pop()
        out.append(path)
        if isinstance(node, dict):
            stack.extend(((*path, k), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend(((*path, i), v) for i, v in enumerate(node))
    return out


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """A copy of `value` with the node at `path` replaced (the root when `path` is empty)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: replaced(value[head], rest, new)}
    copy = list(value)
    copy[head] = replaced(copy[head], rest, new)
    return copy


@st.composite
def mutated(draw: st.DrawFn, original: Any) -> Any:
    """`original` with one to three places replaced by arbitrary JSON or removed."""
    value = original
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths_of(value)))
        if path and isinstance(parent := _at(value, path[:-1]), dict) and draw(st.booleans()):
            value = replaced(value, path[:-1], {k: v for k, v in parent.items() if k != path[-1]})
        else:
            value = replaced(value, path, draw(json_values))
    return value


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def depth_of(value: Any) -> int:
    """How deep a parsed JSON value nests (iteratively)."""
    deepest = 0
    stack: list[tuple[int, Any]] = [(0, value)]
    while stack:
        d, node = stack.pop()
        if isinstance(node, dict | list):
            d += 1
            deepest = max(deepest, d)
            stack.extend(
                (d, child) for child in (node.values() if isinstance(node, dict) else node)
            )
    return deepest
