"""State directories stay private: Synapse's database holds the bot's access token."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from fleet.local.synapse import SynapseServer
from fleetcore.secrets import tighten_tree


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_tighten_tree_makes_an_open_state_directory_private(tmp_path: Path) -> None:
    root = tmp_path / "state"
    (root / "synapse").mkdir(parents=True)
    os.chmod(root, 0o755)
    os.chmod(root / "synapse", 0o755)
    db = root / "synapse" / "homeserver.db"
    db.write_text("token")
    os.chmod(db, 0o644)
    tool = root / "run.sh"
    tool.write_text("#!/bin/sh\n")
    os.chmod(tool, 0o755)

    changed = tighten_tree(root)

    assert set(changed) == {root, root / "synapse", db, tool}
    assert _mode(root) == _mode(root / "synapse") == 0o700
    assert _mode(db) == 0o600
    assert _mode(tool) == 0o700  # the owner may still run it; nobody else may read it
    assert tighten_tree(root) == []


def test_the_homeservers_own_files_are_private(synapse: SynapseServer) -> None:
    """What Synapse wrote (its database, keys, media, logs) is readable by its owner only."""
    paths = [synapse.data_dir, *synapse.data_dir.rglob("*")]
    assert any(p.name == "homeserver.db" for p in paths)
    open_to_others = [p for p in paths if not p.is_symlink() and _mode(p) & 0o077]
    assert open_to_others == []
