"""`fleet agent keygen` and `fleet soul sign|verify`: identities made and checked offline.

Secrets go to 0600 files only: never to stdout, stderr, logs or arguments. stdout carries
only public data (JSON for keygen) so it can be piped; the irrevocability warning and other
words for the operator go to stderr.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from fleetcore.identity import keystore
from fleetcore.identity.nostr import IRREVOCABLE
from fleetcore.secrets import SecretError

AGENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
EXIT_REFUSED = 1
EXIT_USAGE = 2


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def keygen_main(name: str, out: Path, about: str | None = None) -> int:
    """Make an agent's keys in `out`; print its public identity as one JSON object."""
    if not AGENT_NAME.fullmatch(name):
        _err(f"fleet agent keygen: {name!r} is not an agent name (letters, digits, - and _)")
        return EXIT_USAGE
    try:
        ident = keystore.keygen(out, name, about)
    except keystore.KeyExistsError as exc:
        _err(f"fleet agent keygen: {exc}")
        _err("Keys are never replaced: a Nostr key cannot be revoked, so a new one is a new")
        _err("identity. Use another --out directory for a new agent.")
        return EXIT_REFUSED
    except (SecretError, OSError) as exc:
        _err(f"fleet agent keygen: {exc}")
        return EXIT_REFUSED
    _err(f"wrote {out / keystore.NOSTR_FILE} and {out / keystore.NKEY_FILE} (0600, in a 0700 dir)")
    _err(f"{name}'s Nostr identity is {ident.npub}: {IRREVOCABLE}.")
    _err(f"{name}'s NATS user NKey is {ident.nkey} (revocable: remove it from the NATS config).")
    print(json.dumps(ident.to_dict(), ensure_ascii=False))
    return 0


def _soul_and_state(cfg: object, soul: Path | None) -> tuple[Path, Path]:
    from fleetcore.config import FleetConfig

    assert isinstance(cfg, FleetConfig)
    return (soul if soul is not None else cfg.soul), cfg.state_dir.expanduser()


def soul_sign_main(cfg: object, soul: Path | None = None) -> int:
    """Sign SOUL.md with the fleet's key, making that key on first use."""
    from fleetcore.soul import sign_soul

    path, state_dir = _soul_and_state(cfg, soul)
    if not path.is_file():
        _err(f"fleet soul sign: {path} does not exist")
        return EXIT_REFUSED
    try:
        key, created = keystore.fleet_key(state_dir)
    except SecretError as exc:
        _err(f"fleet soul sign: {exc}")
        return EXIT_REFUSED
    if created:
        where = keystore.fleet_identity_dir(state_dir) / keystore.FLEET_NOSTR_FILE
        _err(f"made the fleet's Nostr key {key.npub} in {where} (0600).")
        _err(f"The fleet's key: {IRREVOCABLE}.")
    try:
        event = sign_soul(path, key)
    except OSError as exc:
        _err(f"fleet soul sign: cannot write {path.name}.sig beside {path}: {exc.strerror}")
        return EXIT_REFUSED
    print(f"signed {path} (sha256 {event.tag('x')}) as {key.npub}; wrote {path.name}.sig")
    return 0


def soul_verify_main(cfg: object, soul: Path | None = None) -> int:
    """Exit 0 only for a SOUL.md signed, unchanged, by the fleet's key."""
    from fleetcore.soul import Soul, SoulState

    path, state_dir = _soul_and_state(cfg, soul)
    try:
        loaded = Soul.load(path)
        trusted = keystore.fleet_npub(state_dir)
    except (OSError, SecretError) as exc:
        _err(f"fleet soul verify: {exc}")
        return EXIT_REFUSED
    check = loaded.check(trusted)
    if check.state is SoulState.VALID:
        print(f"{path}: {check.status_line}")
        return 0
    _err(f"{path}: {check.status_line}")
    return EXIT_REFUSED
