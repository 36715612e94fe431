"""`fleet agent keygen` and `fleet soul sign|verify`, run as the operator runs them."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import nostr_sdk
import yaml

from fleetcore.identity import keystore
from fleetcore.identity.nkey import UserNKey, is_user_public
from fleetcore.identity.nostr import Event, NostrKey, npub_decode

REPO = Path(__file__).resolve().parents[2]


def fleet(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleet.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd or REPO,
        check=False,
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path, follow_symlinks=False).st_mode)


def test_keygen_writes_private_keys_and_prints_only_public_json(tmp_path: Path) -> None:
    out = tmp_path / "agents" / "wolf-1"
    run = fleet("agent", "keygen", "wolf-1", "--out", str(out), "--about", "a worker")
    assert run.returncode == 0, run.stderr
    assert _mode(out) == 0o700
    assert _mode(out / "nostr.nsec") == 0o600 and _mode(out / "nkey.seed") == 0o600

    printed = json.loads(run.stdout)
    assert set(printed) >= {"npub", "nkey", "profile_event"}
    nostr = NostrKey.from_nsec((out / "nostr.nsec").read_text())
    nkey = UserNKey.from_seed((out / "nkey.seed").read_text())
    assert printed["npub"] == nostr.npub and npub_decode(printed["npub"]) == nostr.public_hex
    assert printed["nkey"] == nkey.public and is_user_public(printed["nkey"])

    profile = Event.from_dict(printed["profile_event"])
    assert profile.verify() and profile.kind == 0 and profile.pubkey == nostr.public_hex
    assert json.loads(profile.content) == {"name": "wolf-1", "about": "a worker"}
    assert nostr_sdk.Event.from_json(json.dumps(printed["profile_event"])).verify()

    # The secrets appear nowhere but in their files; the operator is told they are forever.
    for secret in (nostr.nsec_secret(), nkey.seed_secret(), nostr.nsec_secret()[5:20]):
        assert secret not in run.stdout and secret not in run.stderr
    assert "cannot be revoked" in run.stderr


def test_keygen_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "wolf-2"
    assert fleet("agent", "keygen", "wolf-2", "--out", str(out)).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = fleet("agent", "keygen", "wolf-2", "--out", str(out))
    assert again.returncode != 0
    assert "already exists" in again.stderr and again.stdout == ""
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_keygen_refuses_a_bad_name(tmp_path: Path) -> None:
    run = fleet("agent", "keygen", "../x", "--out", str(tmp_path / "x"))
    assert run.returncode != 0 and "not an agent name" in run.stderr
    assert not (tmp_path / "x").exists()


def _config(tmp_path: Path, soul: Path) -> Path:
    cfg = {
        "state_dir": str(tmp_path / "state"),
        "soul": str(soul),
        "matrix": {
            "homeserver": "http://127.0.0.1:1",
            "user_id": "@bot:example.org",
            "password": {"env": "UNUSED_PASSWORD"},
        },
        "operators": ["@op:example.org"],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_soul_sign_then_verify_then_alter(tmp_path: Path) -> None:
    soul = tmp_path / "SOUL.md"
    soul.write_text("# SOUL.md\n\nBe kind.\n")
    cfg = _config(tmp_path, soul)

    unsigned = fleet("soul", "verify", "--config", str(cfg))
    assert unsigned.returncode != 0 and "unsigned" in unsigned.stderr

    signed = fleet("soul", "sign", "--config", str(cfg))
    assert signed.returncode == 0, signed.stderr
    key_file = tmp_path / "state" / "identity" / "fleet.nsec"
    assert _mode(key_file) == 0o600 and _mode(key_file.parent) == 0o700
    fleet_key = keystore.load_nostr(key_file)
    assert "cannot be revoked" in signed.stderr  # the fleet key was made just now
    assert fleet_key.nsec_secret() not in signed.stdout + signed.stderr

    sig = json.loads((tmp_path / "SOUL.md.sig").read_text())
    event = Event.from_dict(sig)
    assert event.verify() and event.pubkey == fleet_key.public_hex
    assert ["x", hashlib.sha256(soul.read_bytes()).hexdigest()] in event.tags
    assert ["name", "SOUL.md"] in event.tags
    assert nostr_sdk.Event.from_json(json.dumps(sig)).verify()

    ok = fleet("soul", "verify", "--config", str(cfg))
    assert ok.returncode == 0, ok.stderr
    assert f"signed by {fleet_key.npub} (valid)" in ok.stdout

    # A second signing reuses the fleet key and says nothing about making one.
    resigned = fleet("soul", "sign", "--config", str(cfg))
    assert resigned.returncode == 0 and "cannot be revoked" not in resigned.stderr
    assert keystore.load_nostr(key_file) == fleet_key

    soul.write_text("# SOUL.md\n\nBe cruel.\n")
    altered = fleet("soul", "verify", "--config", str(cfg))
    assert altered.returncode != 0 and "altered" in altered.stderr

    soul.write_text("# SOUL.md\n\nBe kind.\n")
    assert fleet("soul", "verify", "--config", str(cfg)).returncode == 0
    sig["content"] = "tampered"
    (tmp_path / "SOUL.md.sig").write_text(json.dumps(sig))
    bad = fleet("soul", "verify", "--config", str(cfg))
    assert bad.returncode != 0 and "bad signature" in bad.stderr
