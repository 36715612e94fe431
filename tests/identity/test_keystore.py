"""Key files: created 0600 in 0700 directories whatever the umask, never overwritten."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetcore.identity import keystore
from fleetcore.identity.keystore import KeyExistsError, KeystoreError
from fleetcore.secrets import SecretError, make_private_dir, write_new_private, write_private


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path, follow_symlinks=False).st_mode)


@pytest.fixture(params=[0o000, 0o022, 0o077])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_keygen_files_are_private_from_creation_whatever_the_umask(
    tmp_path: Path, umask: int
) -> None:
    out = tmp_path / "agents" / "wolf-1"
    ident = keystore.keygen(out, "wolf-1")
    assert _mode(out) == 0o700
    assert _mode(out / keystore.NOSTR_FILE) == 0o600
    assert _mode(out / keystore.NKEY_FILE) == 0o600
    assert sorted(p.name for p in out.iterdir()) == [keystore.NKEY_FILE, keystore.NOSTR_FILE]
    nostr, nkey = keystore.load_agent(out)
    assert nostr.npub == ident.npub and nkey.public == ident.nkey
    assert ident.profile_event.verify() and ident.profile_event.pubkey == nostr.public_hex


def test_keygen_refuses_to_replace_either_key(tmp_path: Path) -> None:
    out = tmp_path / "wolf"
    keystore.keygen(out, "wolf")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(KeyExistsError):
        keystore.keygen(out, "wolf")
    (out / keystore.NOSTR_FILE).unlink()
    with pytest.raises(KeyExistsError):  # the NKey seed is still there: nothing is written
        keystore.keygen(out, "wolf")
    assert not (out / keystore.NOSTR_FILE).exists()
    assert (out / keystore.NKEY_FILE).read_bytes() == before[keystore.NKEY_FILE]


def test_an_open_directory_is_refused_not_chmodded(tmp_path: Path) -> None:
    out = tmp_path / "open"
    out.mkdir()
    os.chmod(out, 0o755)
    with pytest.raises(SecretError, match="open to others"):
        keystore.keygen(out, "wolf")
    assert _mode(out) == 0o755 and list(out.iterdir()) == []


def test_a_symlink_planted_as_a_key_file_is_not_followed(tmp_path: Path) -> None:
    out = make_private_dir(tmp_path / "k")
    target = tmp_path / "elsewhere"
    (out / keystore.NOSTR_FILE).symlink_to(target)
    with pytest.raises(KeyExistsError):
        keystore.keygen(out, "wolf")
    assert not target.exists()


def test_a_readable_key_file_is_refused_on_load(tmp_path: Path) -> None:
    out = tmp_path / "wolf"
    keystore.keygen(out, "wolf")
    os.chmod(out / keystore.NKEY_FILE, 0o644)
    with pytest.raises(SecretError, match="readable by others"):
        keystore.load_agent(out)


def test_a_malformed_key_file_says_which(tmp_path: Path) -> None:
    out = make_private_dir(tmp_path / "bad")
    write_new_private(out / keystore.NOSTR_FILE, "npub1notasecret\n")
    with pytest.raises(KeystoreError, match=keystore.NOSTR_FILE):
        keystore.load_nostr(out / keystore.NOSTR_FILE)


def test_write_private_is_0600_under_an_open_umask_and_replaces(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "s" / "token"
        write_private(path, "one")
        write_private(path, "two")
    finally:
        os.umask(old)
    assert _mode(path) == 0o600 and path.read_text() == "two"
    assert not path.with_name("token.tmp").exists()


def test_fleet_key_is_made_once_with_its_public_half_beside_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert keystore.fleet_npub(state) is None
    key, created = keystore.fleet_key(state)
    assert created
    again, created_again = keystore.fleet_key(state)
    assert again == key and not created_again
    folder = keystore.fleet_identity_dir(state)
    assert _mode(folder) == 0o700
    assert _mode(folder / keystore.FLEET_NOSTR_FILE) == 0o600
    assert keystore.fleet_npub(state) == key.npub
    (folder / keystore.FLEET_NPUB_FILE).unlink()
    assert keystore.fleet_npub(state) == key.npub  # derived from the secret when it can be


def test_key_files_are_ignored_by_git() -> None:
    repo = Path(__file__).resolve().parents[2]
    for name in (keystore.NOSTR_FILE, keystore.NKEY_FILE, keystore.FLEET_NOSTR_FILE):
        probe = subprocess.run(
            ["git", "check-ignore", "-q", f"somewhere/{name}"], cwd=repo, check=False
        )
        assert probe.returncode == 0, f"{name} is not ignored by git"


def test_a_directory_of_another_user_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = make_private_dir(tmp_path / "theirs")
    me = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: me + 1)
    with pytest.raises(SecretError, match="another user"):
        keystore.keygen(out, "wolf")
    assert list(out.iterdir()) == []
