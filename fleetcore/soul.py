"""SOUL.md: the fleet's voice, the system prompt on every model backend, and its signature.

The operator signs SOUL.md with the fleet's Nostr key (`fleet soul sign`): a NIP-01 event
over the file's sha256, stored beside it as `SOUL.md.sig`. The bot and every agent check it
at start, so a SOUL.md changed behind the operator's back is noticed: the bot says so in
`!status`, and agents refuse to start on it until the operator signs the new text.

What agents accept:
- signed and unchanged, by the fleet's key (or by any key if the fleet has none yet): yes;
- unsigned, while the fleet has no key yet, or when it is the packaged default: yes, and
  `!status` warns. Once the fleet has a key, an unsigned edited SOUL.md is refused, so
  deleting the `.sig` is no way around the signature;
- altered after signing, a bad signature, or signed by another key: no.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from fleetcore import data
from fleetcore.identity.keystore import fleet_npub
from fleetcore.identity.nostr import Event, NostrError, NostrKey, npub_decode
from fleetcore.log import fields
from fleetcore.secrets import SecretError

log = logging.getLogger("hermes.soul")

SIG_SUFFIX = ".sig"
# NIP-94 "file metadata": a regular event whose `x` tag is the file's sha256 hex.
SOUL_SIG_KIND = 1063
MEDIA_TYPE = "text/markdown"


@dataclass(frozen=True)
class Soul:
    text: str
    sha256: str
    # Where it was read from (None: the packaged default); not part of what a soul *is*.
    path: Path | None = field(default=None, compare=False)

    @classmethod
    def of(cls, raw: bytes, path: Path | None = None) -> Soul:
        return cls(raw.decode("utf-8"), hashlib.sha256(raw).hexdigest(), path)

    @classmethod
    def load(cls, path: Path) -> Soul:
        return cls.of(path.read_bytes(), path)

    @classmethod
    def packaged(cls) -> Soul:
        """The SOUL.md this release ships (the repository's, inside the package)."""
        return cls.of(data.read_bytes(data.SOUL))

    def check(self, fleet_npub: str | None) -> SoulCheck:
        """This text's signature state; `fleet_npub` is the only signer trusted, if known."""
        if self.path is None:
            return SoulCheck(SoulState.UNSIGNED, None, "is the packaged default, unsigned")
        return check_signature(self, sig_path(self.path), fleet_npub)


class SoulRefusedError(RuntimeError):
    """SOUL.md is not one an agent may run on (altered, forged, or unsigned when it must be)."""


def judge(soul: Soul, state_dir: Path) -> SoulCheck:
    """Judge a loaded SOUL.md against the fleet's key in `state_dir`, logging the verdict."""
    try:
        trusted = fleet_npub(state_dir)
    except SecretError as exc:
        # The fleet's key is there but unusable (say, readable by others): nothing can be
        # trusted until the operator fixes it, so agents refuse and `!status` says why.
        check = SoulCheck(SoulState.UNCHECKED, None, f"cannot be checked: {exc}")
    else:
        check = soul.check(trusted)
    level = logging.INFO if check.state is SoulState.VALID else logging.WARNING
    log.log(
        level,
        "soul_checked",
        extra=fields(
            path=str(soul.path) if soul.path else "(packaged)",
            sha256=soul.sha256,
            state=check.state.value,
            signer=check.npub,
        ),
    )
    return check


def load_for_agent(path: Path, state_dir: Path) -> Soul:
    """Load SOUL.md for an agent, refusing one that was altered after signing or forged."""
    soul = Soul.load(path)
    check = judge(soul, state_dir)
    if not check.agents_may_start:
        raise SoulRefusedError(f"refusing to start: {path}: {check.status_line}")
    return soul


class SoulState(StrEnum):
    VALID = "valid"
    UNSIGNED = "unsigned"
    ALTERED = "altered"
    BAD_SIGNATURE = "bad signature"
    UNTRUSTED = "untrusted signer"
    UNCHECKED = "not checked"


@dataclass(frozen=True)
class SoulCheck:
    state: SoulState
    npub: str | None
    detail: str
    # An unsigned SOUL.md that agents must still refuse (the fleet has a key, text edited).
    refused_unsigned: bool = False

    @property
    def agents_may_start(self) -> bool:
        if self.state is SoulState.UNSIGNED:
            return not self.refused_unsigned
        return self.state is SoulState.VALID

    @property
    def status_line(self) -> str:
        """One plain line for `!status` and the logs."""
        if self.state is SoulState.VALID:
            return f"SOUL.md signed by {self.npub} (valid)"
        return f"SOUL.md {self.detail}"


def sig_path(soul_path: Path) -> Path:
    return soul_path.with_name(soul_path.name + SIG_SUFFIX)


def sign_soul(path: Path, key: NostrKey, created_at: int | None = None) -> Event:
    """Sign the file's current bytes and write `<name>.sig` beside it (public, not secret)."""
    soul = Soul.load(path)
    raw_size = len(soul.text.encode("utf-8"))
    event = key.sign_event(
        SOUL_SIG_KIND,
        f"{path.name} of a Hermes fleet: its system prompt, signed by the fleet's key",
        [
            ["x", soul.sha256],
            ["name", path.name],
            ["m", MEDIA_TYPE],
            ["size", str(raw_size)],
            ["alt", f"signature of {path.name}"],
        ],
        created_at,
    )
    out = sig_path(path)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(event.to_dict(), ensure_ascii=False, indent=1) + "\n", "utf-8")
    os.replace(tmp, out)
    return event


def _is_packaged_default(soul: Soul) -> bool:
    try:
        return soul.sha256 == Soul.packaged().sha256
    except OSError:
        return False


def check_signature(soul: Soul, sig: Path, fleet_npub: str | None) -> SoulCheck:
    """Judge `soul` (the bytes already loaded, so check and use cannot differ) by `sig`."""
    trusted_hex: str | None = None
    if fleet_npub is not None:
        try:
            trusted_hex = npub_decode(fleet_npub)
        except NostrError:
            trusted_hex = None
    try:
        raw = sig.read_bytes()
    except FileNotFoundError:
        if trusted_hex is not None and not _is_packaged_default(soul):
            return SoulCheck(
                SoulState.UNSIGNED,
                None,
                f"is unsigned, but the fleet has a key ({fleet_npub}): sign it with "
                "`fleet soul sign` if this text is yours",
                refused_unsigned=True,
            )
        return SoulCheck(SoulState.UNSIGNED, None, "is unsigned (sign it with `fleet soul sign`)")
    except OSError as exc:
        return SoulCheck(SoulState.BAD_SIGNATURE, None, f"signature unreadable: {exc.strerror}")
    try:
        event = Event.from_json(raw)
    except NostrError as exc:
        return SoulCheck(SoulState.BAD_SIGNATURE, None, f"has a malformed signature file ({exc})")
    try:
        npub: str | None = event.npub
    except NostrError:
        npub = None
    if not event.verify() or event.kind != SOUL_SIG_KIND or event.tag("x") is None:
        return SoulCheck(SoulState.BAD_SIGNATURE, npub, f"has a bad signature ({sig.name})")
    if trusted_hex is not None and event.pubkey != trusted_hex:
        return SoulCheck(
            SoulState.UNTRUSTED,
            npub,
            f"is signed by {npub}, which is not the fleet's key {fleet_npub}",
        )
    if event.tag("x") != soul.sha256:
        return SoulCheck(
            SoulState.ALTERED,
            npub,
            f"was altered after it was signed by {npub}: re-sign it with `fleet soul sign` "
            "if the change is yours",
        )
    return SoulCheck(SoulState.VALID, npub, "valid")
