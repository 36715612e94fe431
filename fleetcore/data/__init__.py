"""Files the fleet ships inside its package, read through `importlib.resources`.

`SOUL.md` (the default system prompt) and `safety-tests.md` (the model safety gate's
prompts) are documented and edited at the repository root; in the source tree the files
here are symlinks to them, and a built wheel carries real copies. So an installed fleet
reads them from its own package, wherever it runs from, and the two can never drift.
"""

from __future__ import annotations

from importlib import resources
from typing import Final

SOUL: Final = "SOUL.md"
SAFETY_TESTS: Final = "safety-tests.md"


def read_bytes(name: str) -> bytes:
    return resources.files(__name__).joinpath(name).read_bytes()


def read_text(name: str) -> str:
    return read_bytes(name).decode("utf-8")
