"""`fleet doctor`: check a deployment the way a careful operator would, and say how to fix it.

Each check is a small function returning a `CheckResult`: it holds (`ok`), it does not
(`problem`, each with the command or edit that fixes it), or the part it checks is not
configured (`not configured`: no `bus:` section, no agent registered), which is said
plainly and does not fail the run. `run_checks` composes them in a fixed order; the exit
code is 0 only when no check found a problem.

Secrets are looked at, never shown: a finding names the secret (its config key or file) and
where it was seen (a pid and process name, a file in git), never its value. Values searched
for are handed to git through stdin, never through argv, where `ps` would show them.

Checks run one after another, in order: the secret-file check must see the modes as the
operator left them, before anything that reads a key file (loading the bot's cross-signing
keys tightens a loose key file as a side effect).
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import json
import logging
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlparse

import yaml

from fleetcore.config import ConfigError, FleetConfig, load_config
from fleetcore.secrets import SecretRef

EXIT_OK = 0
EXIT_PROBLEMS = 1
# A secret shorter than this would match by chance in command lines and files: such a
# value is no secret worth the name anyway, and is skipped by the scans.
MIN_SCANNED_LEN = 8
DEFAULT_TIMEOUT_S = 5.0
NATS_DEFAULT_PORT = 4222


class Status(StrEnum):
    OK = "ok"
    PROBLEM = "problem"
    NOT_CONFIGURED = "not configured"
    NOT_CHECKED = "not checked"


@dataclass(frozen=True)
class Problem:
    what: str
    fix: str


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    summary: str
    problems: tuple[Problem, ...] = ()

    @classmethod
    def ok(cls, name: str, summary: str) -> CheckResult:
        return cls(name, Status.OK, summary)

    @classmethod
    def failed(cls, name: str, problems: Sequence[Problem], summary: str = "") -> CheckResult:
        assert problems, "a failed check names at least one problem"
        text = summary or (problems[0].what if len(problems) == 1 else f"{len(problems)} problems")
        return cls(name, Status.PROBLEM, text, tuple(problems))

    @classmethod
    def not_configured(cls, name: str, summary: str) -> CheckResult:
        return cls(name, Status.NOT_CONFIGURED, summary)

    @property
    def holds(self) -> bool:
        return self.status in (Status.OK, Status.NOT_CONFIGURED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "status": self.status.value,
            "summary": self.summary,
            "problems": [{"problem": p.what, "fix": p.fix} for p in self.problems],
        }


def _from_problems(name: str, problems: Sequence[Problem], ok_summary: str) -> CheckResult:
    return CheckResult.failed(name, problems) if problems else CheckResult.ok(name, ok_summary)


# -- config -------------------------------------------------------------------------------


def check_config(path: Path) -> tuple[CheckResult, FleetConfig | None]:
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        problems = [
            Problem(f"{path}: {p}", f"edit {path}" + (f" at `{p.path}`" if p.path else ""))
            for p in exc.problems
        ]
        return CheckResult.failed("config", problems), None
    return CheckResult.ok("config", f"{path} is valid"), cfg


# -- the secrets: where they are ------------------------------------------------------------


@dataclass(frozen=True)
class SecretSource:
    """One secret: a file or an environment variable, and how to get its values.

    `json_keys`: the file is JSON or YAML and the secrets are the string values under these keys
    (anywhere in it: `accounts.json` nests them); empty: the whole stripped text is one."""

    name: str
    path: Path | None = None
    env: str | None = None
    json_keys: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"env:{self.env}" if self.env is not None else str(self.path)

    def values(self) -> list[str]:
        """The secret values, for the scans only: never printed or logged."""
        if self.env is not None:
            value = os.environ.get(self.env, "")
            return [value] if value else []
        assert self.path is not None
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return []
        if not self.json_keys:
            return [text] if text else []
        try:
            data = yaml.safe_load(text)  # JSON is YAML: one parser for both kinds of file
        except yaml.YAMLError:
            return []
        return [v for v in _json_strings(data, self.json_keys) if v]


def _json_strings(data: Any, keys: tuple[str, ...]) -> list[str]:
    if isinstance(data, dict):
        out: list[str] = []
        for k, v in data.items():
            if k in keys and isinstance(v, str):
                out.append(v)
            else:
                out.extend(_json_strings(v, keys))
        return out
    if isinstance(data, list):
        return [s for item in data for s in _json_strings(item, keys)]
    return []


# Secret files a state directory may hold, besides the ones the config names: (a glob on
# the file's name, the keys holding the secrets in it or () for the whole text).
STATE_SECRETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("*.nsec", ()),  # Nostr keys: the fleet's (identity/fleet.nsec) and agents'
    ("*.seed", ()),  # agents' NATS NKey seeds (fleet agent keygen)
    ("*.nk", ()),  # NKey seeds fleet up makes (nats-keys/)
    ("*-key.pem", ()),  # the fleet CA's and TLS keys (fleetcore/bus/pki.py)
    ("signing.key", ()),  # Synapse's server signing key, under fleet up's state
    ("session.json", ("access_token",)),  # the bot's Matrix session
    ("cross_signing.json", ("master", "self_signing", "user_signing")),
    ("accounts.json", ("password",)),  # fleet up's local accounts
    # Synapse's config under fleet up's state: its shared secret registers admins.
    ("homeserver.yaml", ("registration_shared_secret", "macaroon_secret_key", "form_secret")),
    ("bot-password", ()),
    ("gitea-token", ()),
    ("webhook-secret", ()),
    ("gitea.token", ()),  # an agent's own forge token (agents/NAME/, `fleet agent add`)
)


def _ref_source(name: str, ref: SecretRef | None) -> SecretSource | None:
    if ref is None:
        return None
    if ref.env is not None:
        return SecretSource(name, env=ref.env)
    assert ref.file is not None
    return SecretSource(name, path=ref.file.expanduser())


def secret_inventory(cfg: FleetConfig) -> list[SecretSource]:
    """Every secret the deployment holds: what the config names, then the state dir's."""
    found: list[SecretSource | None] = [
        _ref_source("matrix.password", cfg.matrix.password),
        _ref_source("matrix.access_token", cfg.matrix.access_token),
    ]
    if cfg.gitea is not None:
        found.append(_ref_source("gitea.token", cfg.gitea.token))
        found.append(_ref_source("gitea.admin_password", cfg.gitea.admin_password))
        if cfg.gitea.webhook is not None:
            found.append(_ref_source("gitea.webhook.secret", cfg.gitea.webhook.secret))
    for i, p in enumerate(cfg.fallback_providers):
        if p.api_key_env is not None:
            found.append(SecretSource(f"fallback_providers[{i}].api_key_env", env=p.api_key_env))
    if cfg.bus is not None:
        if cfg.bus.nkey_seed_file is not None:
            found.append(
                SecretSource("bus.nkey_seed_file", path=cfg.bus.nkey_seed_file.expanduser())
            )
        if cfg.bus.tls_key_file is not None:
            found.append(SecretSource("bus.tls_key_file", path=cfg.bus.tls_key_file.expanduser()))
    if cfg.wolves.nostr_key_file is not None:
        found.append(
            SecretSource("wolves.nostr_key_file", path=cfg.wolves.nostr_key_file.expanduser())
        )
    out = [s for s in found if s is not None]
    named = {_same_file_key(s.path) for s in out if s.path is not None}
    state = cfg.state_dir.expanduser()
    for path, keys in _state_secret_files(state):
        if _same_file_key(path) not in named:
            named.add(_same_file_key(path))
            out.append(SecretSource(str(path.relative_to(state)), path=path, json_keys=keys))
    return out


def _same_file_key(path: Path | None) -> str:
    try:
        return str(Path(path).resolve()) if path is not None else ""
    except OSError:
        return str(path)


def _state_secret_files(state: Path) -> list[tuple[Path, tuple[str, ...]]]:
    out: list[tuple[Path, tuple[str, ...]]] = []
    if not state.is_dir():
        return out
    for root, dirs, files in os.walk(state):
        # JetStream's store and Synapse's media are large and hold no secret files.
        dirs[:] = sorted(d for d in dirs if d not in ("jetstream", "media", "store"))
        for name in sorted(files):
            for pattern, keys in STATE_SECRETS:
                if fnmatch.fnmatch(name, pattern):
                    out.append((Path(root) / name, keys))
                    break
    return out


# -- secrets: readable and 0600 -------------------------------------------------------------


def _file_problem(source: SecretSource) -> Problem | None:
    assert source.path is not None
    path = source.path
    label = source.name if source.name != str(path) else str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        return Problem(
            f"{label}: {path} does not exist",
            f"create it (0600: `install -m 600 /dev/null {path}`, then write the secret), "
            "or fix the path in the config",
        )
    except OSError as exc:
        return Problem(f"{label}: cannot stat {path}: {exc.strerror}", f"check {path.parent}")
    if st.st_uid != os.getuid():
        return Problem(
            f"{label}: {path} belongs to uid {st.st_uid}, not to this user ({os.getuid()})",
            f"chown {os.getuid()} {path} (the fleet's user must own its secrets)",
        )
    mode = st.st_mode & 0o777
    if mode & 0o077:
        return Problem(
            f"{label}: {path} is open to others (mode {mode:04o})",
            f"chmod 600 {path}; if anyone else may have read it, rotate the secret",
        )
    try:
        with path.open("rb") as fh:
            empty = not fh.read(4096).strip()
    except OSError as exc:
        return Problem(f"{label}: cannot read {path}: {exc.strerror}", f"chmod 600 {path}")
    if empty:
        return Problem(f"{label}: {path} is empty", f"write the secret into {path}")
    return None


def check_secret_files(sources: Sequence[SecretSource]) -> CheckResult:
    """Every secret is there and readable by its owner only (as ssh insists for its keys)."""
    problems: list[Problem] = []
    for source in sources:
        if source.env is not None:
            if not os.environ.get(source.env):
                problems.append(
                    Problem(
                        f"{source.name}: environment variable {source.env} is not set",
                        f"set {source.env} in the environment `fleet` runs with "
                        "(the service manager's environment file, 0600)",
                    )
                )
            continue
        problem = _file_problem(source)
        if problem is not None:
            problems.append(problem)
    files = sum(1 for s in sources if s.path is not None)
    envs = len(sources) - files
    return _from_problems(
        "secrets",
        problems,
        f"{files} secret file(s) readable and private (0600), {envs} environment secret(s) set",
    )


# -- secrets: not on a command line ---------------------------------------------------------


@dataclass(frozen=True)
class Sighting:
    secret: str
    pid: int
    process: str


def scan_command_lines(
    sources: Sequence[SecretSource], proc: Path = Path("/proc"), uid: int | None = None
) -> list[Sighting]:
    """Which secret shows in which process's argv, among the processes of user `uid`.

    Every local user can read any process's command line (`ps -ef`), so a secret there
    is a secret shared with the whole machine. Ours is scanned too."""
    uid = os.getuid() if uid is None else uid
    wanted = [
        (s.name, v.encode()) for s in sources for v in s.values() if len(v) >= MIN_SCANNED_LEN
    ]
    if not wanted:
        return []
    seen: list[Sighting] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            argv = (entry / "cmdline").read_bytes()
            comm = (entry / "comm").read_text(errors="replace").strip()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        for name, value in wanted:
            if value in argv:
                seen.append(Sighting(name, int(entry.name), comm))
    return sorted(seen, key=lambda s: (s.secret, s.pid))


def check_command_lines(sources: Sequence[SecretSource]) -> CheckResult:
    problems = [
        Problem(
            f"{s.secret} is on the command line of pid {s.pid} ({s.process})",
            f"stop that process and pass the secret in a 0600 file or an environment "
            f"variable instead; rotate {s.secret}: every local user could read it (`ps`)",
        )
        for s in scan_command_lines(sources)
    ]
    return _from_problems("command lines", problems, "no secret on any of this user's commands")


# -- secrets: not in git ------------------------------------------------------------------


def _git(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(cwd), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def git_work_tree(path: Path) -> Path | None:
    """The work tree holding `path` (a file or a directory), if any."""
    d = path if path.is_dir() else path.parent
    while not d.exists():
        d = d.parent
    try:
        out = _git(d, "rev-parse", "--show-toplevel")
    except (OSError, subprocess.TimeoutExpired):
        return None
    return Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None


def check_git(sources: Sequence[SecretSource], dirs: Sequence[Path]) -> CheckResult:
    """No secret file tracked or left un-ignored in a work tree; no value in a tracked file.

    Only the tracked files as they are now are searched: a secret committed and removed
    since is still in the history (rotate it, whatever else is done)."""
    problems: list[Problem] = []
    trees: dict[Path, None] = {}
    for d in dirs:
        tree = git_work_tree(d)
        if tree is not None:
            trees[tree] = None
    for source in sources:
        if source.path is None or not source.path.exists():
            continue
        tree = git_work_tree(source.path)
        if tree is None:
            continue
        trees[tree] = None
        rel = os.path.relpath(source.path.resolve(), tree.resolve())
        if _git(tree, "ls-files", "--error-unmatch", "--", rel).returncode == 0:
            problems.append(
                Problem(
                    f"{source.name}: {source.path} is tracked by git in {tree}",
                    f"git -C {tree} rm --cached -- {rel}, add it to .gitignore, commit, "
                    f"and rotate {source.name}: it is in the history",
                )
            )
        elif _git(tree, "check-ignore", "-q", "--", rel).returncode != 0:
            problems.append(
                Problem(
                    f"{source.name}: {source.path} is inside the git work tree {tree} and "
                    "not ignored (one `git add .` from being committed)",
                    f"add {rel} (or its directory) to {tree / '.gitignore'}",
                )
            )
    for tree in trees:
        problems.extend(_grep_tree(tree, sources))
    where = ", ".join(str(t) for t in trees) if trees else "no git work tree"
    return _from_problems("git", problems, f"no secret in git ({where})")


def _grep_tree(tree: Path, sources: Sequence[SecretSource]) -> list[Problem]:
    out: list[Problem] = []
    for source in sources:
        values = [v for v in source.values() if len(v) >= MIN_SCANNED_LEN and "\n" not in v]
        if not values:
            continue
        # Patterns through stdin (`-f -`): never in argv, where `ps` would show them.
        found = _git(tree, "grep", "-F", "-l", "-I", "-f", "-", stdin="\n".join(values) + "\n")
        files = [f for f in found.stdout.splitlines() if f]
        if found.returncode == 0 and files:
            shown = ", ".join(files[:5]) + (" ..." if len(files) > 5 else "")
            out.append(
                Problem(
                    f"{source.name}'s value is in tracked files of {tree}: {shown}",
                    "take it out of those files (refer to it as {env: NAME} or {file: PATH}), "
                    f"commit, and rotate {source.name}: it is in the history",
                )
            )
    return out


# -- the homeserver and the bot's device -----------------------------------------------------


async def check_homeserver(url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> CheckResult:
    import httpx

    versions_url = f"{url.rstrip('/')}/_matrix/client/versions"
    fix = f"start the homeserver, or fix matrix.homeserver ({url}) and the reverse proxy"
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as http:
            resp = await http.get(versions_url)
    except httpx.HTTPError as exc:
        return CheckResult.failed(
            "homeserver", [Problem(f"{url} does not answer ({type(exc).__name__}: {exc})", fix)]
        )
    try:
        versions = resp.json().get("versions") if resp.status_code == 200 else None
    except (ValueError, AttributeError):
        versions = None
    if not isinstance(versions, list) or not versions:
        return CheckResult.failed(
            "homeserver",
            [Problem(f"{versions_url} answered HTTP {resp.status_code}, not Matrix versions", fix)],
        )
    return CheckResult.ok("homeserver", f"{url} answers (Matrix {versions[-1]})")


async def check_bot_device(cfg: FleetConfig, config_path: Path) -> CheckResult:
    """The bot's device is signed by its self-signing key, which its own master key signs."""
    from bot.crosssign.api import CrossSigningError
    from bot.crosssign.cli import identity_status
    from bot.crosssign.keys import KeyFileError, fingerprint
    from bot.matrix.client import session_path
    from bot.matrix.state import load_session

    name = "bot device"
    start = f"start the bot once (fleet bot --config {config_path}): it logs in, makes its "
    start += "cross-signing identity and signs its device"
    try:
        session = load_session(session_path(cfg))
    except (OSError, ValueError, KeyError, TypeError):
        return CheckResult.failed(
            name, [Problem(f"{session_path(cfg)} is not a bot session", f"remove it, then {start}")]
        )
    if session is None:
        return CheckResult.failed(name, [Problem("the bot has never logged in", start)])
    try:
        st = await identity_status(
            cfg.matrix.homeserver,
            session.access_token,
            session.user_id,
            session.device_id,
            cfg.bot_dir,
        )
    except CrossSigningError as exc:
        fix = "the bot's session is no longer valid: remove " + str(session_path(cfg))
        fix += f" and restart the bot (fleet bot --config {config_path})"
        if exc.status != 401:
            fix = "check the homeserver's log"
        return CheckResult.failed(name, [Problem(f"cannot read the bot's keys: {exc}", fix)])
    except KeyFileError as exc:
        return CheckResult.failed(
            name, [Problem(str(exc), "restore the bot's cross_signing.json from a backup")]
        )
    except Exception as exc:  # the homeserver check says more; name it here
        return CheckResult.failed(
            name,
            [Problem(f"cannot query the bot's keys ({type(exc).__name__})", "see `homeserver`")],
        )
    who = f"{session.user_id}'s device {session.device_id}"
    reset = "find out who reset it; if the bot's own key file is lost, reset its identity "
    reset += "(operators must then verify the bot again)"
    if st.local_master is None:
        return CheckResult.failed(name, [Problem(f"no cross-signing keys in {cfg.bot_dir}", start)])
    if st.server_master is None:
        return CheckResult.failed(
            name, [Problem(f"{session.user_id} has no cross-signing identity on the server", start)]
        )
    if st.server_master != st.local_master:
        problem = f"the homeserver's master key for {session.user_id} "
        problem += f"({fingerprint(st.server_master)}) is not the bot's own"
        return CheckResult.failed(name, [Problem(problem, reset)])
    restart = f"restart the bot (fleet bot --config {config_path}): it signs its device at start"
    if not st.device_uploaded:
        return CheckResult.failed(name, [Problem(f"{who} has no keys on the server", restart)])
    if not st.device_signed:
        return CheckResult.failed(name, [Problem(f"{who} is not cross-signed", restart)])
    return CheckResult.ok(
        name, f"{who} is cross-signed (master key {fingerprint(st.local_master)})"
    )


# -- NATS -----------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """A host every address of which is loopback; a name that does not resolve is not."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    if host == "localhost":
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


class Anonymous(StrEnum):
    REFUSED = "refused"
    ACCEPTED = "accepted"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class NatsProbe:
    outcome: Anonymous
    detail: str
    info: dict[str, Any] = field(default_factory=dict)


# TLS alerts a server with `verify: true` sends a client without a certificate.
_NO_CLIENT_CERT = frozenset(
    {
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "TLSV1_ALERT_UNKNOWN_CA",
    }
)


async def probe_anonymous(
    url: str, ca_file: Path | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> NatsProbe:
    """Connect with no credentials at all, as any process on the network could, and say
    whether the server lets it in. Spoken in NATS's own text protocol: INFO, CONNECT, PING.
    """
    parsed = urlparse(url)
    host, port = parsed.hostname or "", parsed.port or NATS_DEFAULT_PORT
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError) as exc:
        return NatsProbe(Anonymous.UNREACHABLE, f"cannot connect to {host}:{port} ({exc})")
    try:
        line = await asyncio.wait_for(reader.readline(), timeout_s)
        if not line.startswith(b"INFO "):
            return NatsProbe(Anonymous.UNREACHABLE, f"{host}:{port} is not a NATS server")
        info = json.loads(line[5:])
        if not isinstance(info, dict):
            info = {}
        if parsed.scheme == "tls" or info.get("tls_required"):
            ctx = ssl.create_default_context(cafile=os.fspath(ca_file) if ca_file else None)
            await asyncio.wait_for(writer.start_tls(ctx, server_hostname=host), timeout_s)
        hello = {"verbose": False, "pedantic": False, "name": "fleet-doctor-anonymous"}
        hello |= {"lang": "python", "version": "doctor", "protocol": 1}
        writer.write(b"CONNECT " + json.dumps(hello).encode() + b"\r\nPING\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.readline(), timeout_s)
    except ssl.SSLError as exc:
        if exc.reason in _NO_CLIENT_CERT:
            return NatsProbe(Anonymous.REFUSED, "a client without a certificate is refused")
        return NatsProbe(Anonymous.UNREACHABLE, f"TLS with {host}:{port} failed: {exc.reason}")
    except (OSError, TimeoutError, ValueError) as exc:
        return NatsProbe(Anonymous.UNREACHABLE, f"{host}:{port}: {type(exc).__name__}: {exc}")
    finally:
        writer.close()
    if answer.startswith((b"PONG", b"+OK", b"INFO")):
        return NatsProbe(Anonymous.ACCEPTED, "a client without credentials is let in", info)
    if b"authorization violation" in answer.lower():
        return NatsProbe(Anonymous.REFUSED, "a client without credentials is refused", info)
    if not answer:
        return NatsProbe(Anonymous.REFUSED, "the server closed the anonymous connection", info)
    said = answer.decode(errors="replace").strip()[:120]
    return NatsProbe(Anonymous.UNREACHABLE, f"unexpected answer: {said}", info)


async def check_nats(
    bus: Any, config_path: Path, timeout_s: float = DEFAULT_TIMEOUT_S
) -> CheckResult:
    """Anonymous clients are refused, the fleet's own key is accepted, and a server off
    this machine is reached over TLS only."""
    from fleetcore.bus.config import BusConfig

    name = "nats"
    if bus is None:
        return CheckResult.not_configured(name, "no `bus:` section: burns and wolves are off")
    assert isinstance(bus, BusConfig)
    problems: list[Problem] = []
    tls_fix = (
        "use tls:// with mutual TLS: make certificates with the fleet's CA "
        "(fleetcore/bus/pki.py), give nats-server a `tls` block with `verify: true`, and set "
        "bus.tls_ca_file, bus.tls_cert_file and bus.tls_key_file"
    )
    reachable = False
    for url in bus.servers:
        parsed = urlparse(url)
        remote = not is_loopback(parsed.hostname or "")
        if remote and parsed.scheme != "tls":
            problems.append(
                Problem(
                    f"{url} is plain nats:// to another machine: tasks and results cross "
                    "the network readable and alterable",
                    tls_fix,
                )
            )
        probe = await probe_anonymous(url, bus.tls_ca_file, timeout_s)
        if probe.outcome is Anonymous.UNREACHABLE:
            problems.append(
                Problem(
                    f"{url}: {probe.detail}",
                    f"start nats-server, or fix bus.servers in {config_path}",
                )
            )
            continue
        reachable = True
        if probe.outcome is Anonymous.ACCEPTED:
            problems.append(
                Problem(
                    f"{url} accepts clients without credentials: any process that can reach "
                    "it can read every task and post as a wolf",
                    "give nats-server an `authorization` block with the fleet's NKey users "
                    "(fleetcore.bus.auth.server_config; `fleet up` writes one)",
                )
            )
        if remote and probe.info and not probe.info.get("tls_required"):
            problems.append(Problem(f"{url}: the server does not require TLS", tls_fix))
    if reachable:
        problems.extend(await _own_credentials(bus, config_path, timeout_s))
    kind = "tls" if bus.uses_tls else "loopback"
    return _from_problems(
        name,
        problems,
        f"{', '.join(bus.servers)} refuses anonymous clients, accepts the fleet's key ({kind})",
    )


async def _own_credentials(bus: Any, config_path: Path, timeout_s: float) -> list[Problem]:
    from fleetcore.bus.connect import BusAuthError, BusTLSError, NKeyError, connect

    if bus.nkey_seed_file is None:
        return [
            Problem(
                "bus.nkey_seed_file is not set: the fleet connects without credentials",
                f"set bus.nkey_seed_file in {config_path} to the bot's NKey seed (0600)",
            )
        ]
    try:
        nc = await connect(bus, "fleet-doctor", first_connect_timeout_s=timeout_s)
    except NKeyError as exc:
        return [Problem(str(exc), "point bus.nkey_seed_file at a valid NKey seed file")]
    except BusAuthError as exc:
        return [
            Problem(
                str(exc),
                "the seed's public key must be a user in nats-server's authorization block "
                "(`fleet up` keeps them in nats-users.json)",
            )
        ]
    except BusTLSError as exc:
        return [Problem(str(exc), "issue the client certificate from the fleet's CA")]
    except (TimeoutError, OSError) as exc:
        return [Problem(f"cannot connect with the fleet's key: {exc}", "see nats-server's log")]
    await nc.close()
    return []


# -- SOUL.md -------------------------------------------------------------------------------


def check_soul(soul_path: Path, state_dir: Path, config_path: Path) -> CheckResult:
    from fleetcore.identity.keystore import fleet_npub
    from fleetcore.secrets import SecretError
    from fleetcore.soul import Soul, SoulState

    name = "soul"
    sign = f"fleet soul sign --config {config_path}"
    try:
        soul = Soul.load(soul_path)
    except OSError as exc:
        return CheckResult.failed(
            name,
            [Problem(f"cannot read {soul_path}: {exc.strerror}", f"fix `soul:` in {config_path}")],
        )
    try:
        trusted = fleet_npub(state_dir)
    except SecretError as exc:
        return CheckResult.failed(
            name, [Problem(f"the fleet's key cannot be used: {exc}", "fix its file mode or owner")]
        )
    check = soul.check(trusted)
    if check.state is SoulState.VALID:
        return CheckResult.ok(name, f"{soul_path}: {check.status_line}")
    fixes = {
        SoulState.UNSIGNED: f"read it, then sign it: {sign}",
        SoulState.ALTERED: f"if the change is yours: {sign}; if not, restore the signed text",
        SoulState.BAD_SIGNATURE: f"if the text is yours: {sign} (writes a new signature)",
        SoulState.UNTRUSTED: f"if the text is yours: {sign} (with the fleet's own key)",
    }
    fix = fixes.get(check.state, sign)
    return CheckResult.failed(name, [Problem(f"{soul_path}: {check.status_line}", fix)])


# -- models ---------------------------------------------------------------------------------

MIN_CHAIN_DEPTH = 3


def _chain_names(cfg: FleetConfig) -> list[str]:
    names = list(dict.fromkeys(p.provider for p in cfg.fallback_providers))
    if cfg.model is not None and cfg.model.provider in names:
        names.remove(cfg.model.provider)
        names.insert(0, cfg.model.provider)
    return names


def check_model_chain(cfg: FleetConfig, config_path: Path) -> CheckResult:
    names = _chain_names(cfg)
    if len(names) >= MIN_CHAIN_DEPTH:
        return CheckResult.ok("model chain", f"{len(names)} deep: {' -> '.join(names)}")
    what = f"the model chain is {len(names)} deep" + (f" ({', '.join(names)})" if names else "")
    return CheckResult.failed(
        "model chain",
        [
            Problem(
                what + f"; at least {MIN_CHAIN_DEPTH} keep the fleet answering when a "
                "provider goes down",
                f"add providers (on different hosts) to fallback_providers in {config_path}, "
                "then fleet safety-test --all",
            )
        ],
    )


def check_safety_tests(cfg: FleetConfig, config_path: Path) -> CheckResult:
    """Every model a conversation may reach passed `safety-tests.md` (the bot routes
    conversation only to those, so one that did not is a hole in the chain)."""
    from fleetcore.safety.modelgate import readiness_path
    from fleetcore.safety.modeltest import ReadinessStore

    name = "safety tests"
    names = _chain_names(cfg)
    if not names:
        return CheckResult.not_configured(name, "no conversation models configured")
    ready = ReadinessStore(readiness_path(cfg)).status()
    problems = []
    for model in names:
        if model not in ready:
            what = f"{model} has never been safety-tested: it gets no conversation"
        elif not ready[model]:
            what = f"{model} failed its safety tests: it gets no conversation"
        else:
            continue
        fix = f"fleet safety-test --model {model} --config {config_path}"
        problems.append(Problem(what, fix))
    return _from_problems(name, problems, f"passed: {', '.join(names)}")


# -- agents' Gitea tokens ---------------------------------------------------------------------


@dataclass(frozen=True)
class AgentToken:
    """An agent as the doctor checks it on the forge: its name, its stored token, and the
    token's id on Gitea (what the scopes are looked up by)."""

    name: str
    token: SecretSource
    token_id: int | None = None


async def check_agent_tokens(
    gitea_url: str,
    agents: Sequence[AgentToken],
    *,
    admin_token: str | None = None,
    admin_auth: tuple[str, str] | None = None,
    repos: Sequence[str] = (),
    config_path: Path = Path("config.yaml"),
) -> CheckResult:
    """Each agent's token is accepted, is the agent's own, its account is enabled; with the
    admin's login, the token has exactly the agent scopes and each repo the agent's access.
    """
    from fleetcore.forge.accounts import check_agent_forge
    from fleetcore.forge.client import GiteaClient

    name = "agent tokens"
    if not agents:
        return CheckResult.not_configured(name, "no agents registered")
    problems: list[Problem] = []
    fix_tpl = "re-provision it: fleet agent add {agent} --config " + str(config_path)
    admin = GiteaClient(gitea_url, admin_token, retries=0) if admin_token else None
    try:
        for agent in agents:
            values = agent.token.values()
            if not values:
                problems.append(
                    Problem(
                        f"{agent.name}: no Gitea token in {agent.token.where}",
                        fix_tpl.format(agent=agent.name),
                    )
                )
                continue
            async with GiteaClient(gitea_url, values[0], retries=0) as client:
                found = await check_agent_forge(
                    client,
                    agent.name,
                    token_id=agent.token_id,
                    admin=admin,
                    admin_auth=admin_auth,
                    repos=repos,
                )
            problems.extend(Problem(p, fix_tpl.format(agent=agent.name)) for p in found)
    finally:
        if admin is not None:
            await admin.aclose()
    scope = "valid, own, enabled" + (", scopes and access as expected" if admin else "")
    names = ", ".join(a.name for a in agents)
    return _from_problems(name, problems, f"{names}: {scope}")


def registered_agents(cfg: FleetConfig) -> list[AgentToken]:
    """The agents `fleet agent add` registered (`STATE_DIR/agents/NAME/`), each with its
    token file and the token's id from its public `agent.yaml`."""
    from fleetcore.identity.agents import TOKEN_FILE, agent_dir, list_agents

    out = []
    for facts in list_agents(cfg.state_dir):
        path = agent_dir(cfg.state_dir, facts.name) / TOKEN_FILE
        token = SecretSource(f"agents/{facts.name}/{TOKEN_FILE}", path=path)
        out.append(AgentToken(facts.gitea_user or facts.name, token, facts.gitea_token_id))
    return out


async def check_agents(cfg: FleetConfig, config_path: Path) -> CheckResult:
    """The registry's agents against the forge, with the admin's login when the config
    has it (without it a token's scopes cannot be read, and that is a problem: it is also
    what `fleet agent add` needs)."""
    from fleetcore.identity.agents import RegistryError
    from fleetcore.projects import project_store
    from fleetcore.secrets import SecretError

    name = "agent tokens"
    if cfg.gitea is None:
        return CheckResult.not_configured(name, "no `gitea:` section: agents have no forge")
    try:
        agents = registered_agents(cfg)
    except RegistryError as exc:
        fix = "fix that agent.yaml, or run `fleet agent add` for the agent again"
        return CheckResult.failed(name, [Problem(str(exc), fix)])
    if not agents:
        return CheckResult.not_configured(
            name, f"no agents registered (fleet agent add NAME --config {config_path})"
        )
    g = cfg.gitea
    try:
        admin_token = g.token.get()
        admin_auth = (
            (g.admin_user, g.admin_password.get())
            if g.admin_user is not None and g.admin_password is not None
            else None
        )
    except SecretError as exc:
        return CheckResult.failed(name, [Problem(str(exc), "see the `secrets` check")])
    repos = sorted({p.repo for p in project_store(cfg).all()})
    result = await check_agent_tokens(
        g.url,
        agents,
        admin_token=admin_token if admin_auth is not None else None,
        admin_auth=admin_auth,
        repos=repos,
        config_path=config_path,
    )
    if admin_auth is not None:
        return result
    unchecked = Problem(
        "the agents' token scopes and repository access are not checked: Gitea shows a "
        "user's tokens only to the site admin's login",
        f"set gitea.admin_user and gitea.admin_password in {config_path}",
    )
    return CheckResult.failed(name, [*result.problems, unchecked])


# -- the runner ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    config_path: Path
    cfg: FleetConfig
    secrets: list[SecretSource]
    timeout_s: float = DEFAULT_TIMEOUT_S


CheckFn = Callable[[Deployment], Awaitable[CheckResult]]


def _sync(fn: Callable[[Deployment], CheckResult]) -> CheckFn:
    async def run(d: Deployment) -> CheckResult:
        return fn(d)

    return run


def _git_dirs(d: Deployment) -> list[Path]:
    return [d.config_path.resolve().parent, d.cfg.state_dir.expanduser()]


CHECKS: tuple[tuple[str, CheckFn], ...] = (
    ("secrets", _sync(lambda d: check_secret_files(d.secrets))),
    ("command lines", _sync(lambda d: check_command_lines(d.secrets))),
    ("git", _sync(lambda d: check_git(d.secrets, _git_dirs(d)))),
    ("homeserver", lambda d: check_homeserver(d.cfg.matrix.homeserver, d.timeout_s)),
    ("bot device", lambda d: check_bot_device(d.cfg, d.config_path)),
    ("nats", lambda d: check_nats(d.cfg.bus, d.config_path, d.timeout_s)),
    ("agent tokens", lambda d: check_agents(d.cfg, d.config_path)),
    (
        "soul",
        _sync(lambda d: check_soul(d.cfg.soul, d.cfg.state_dir.expanduser(), d.config_path)),
    ),
    ("model chain", _sync(lambda d: check_model_chain(d.cfg, d.config_path))),
    ("safety tests", _sync(lambda d: check_safety_tests(d.cfg, d.config_path))),
)


async def run_checks(config_path: Path, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[CheckResult]:
    """Every check, in order. A check that raises is a problem of its own, never a crash
    that hides the others' answers."""
    first, cfg = check_config(config_path)
    if cfg is None:
        return [
            first,
            *(
                CheckResult(name, Status.NOT_CHECKED, "not checked: the config is invalid")
                for name, _ in CHECKS
            ),
        ]
    deployment = Deployment(config_path, cfg, secret_inventory(cfg), timeout_s)
    results = [first]
    for name, fn in CHECKS:
        try:
            results.append(await fn(deployment))
        except Exception as exc:  # reported as this check's problem
            problem = Problem(
                f"the check failed: {type(exc).__name__}: {exc}", "report this as a bug"
            )
            results.append(CheckResult.failed(name, [problem]))
    return results


# -- output -------------------------------------------------------------------------------

_MARKS = {
    Status.OK: ("✓", "[ok]"),
    Status.PROBLEM: ("✗", "[FAIL]"),
    Status.NOT_CONFIGURED: ("–", "[--]"),
    Status.NOT_CHECKED: ("?", "[??]"),
}


def _can_encode(stream: TextIO, text: str) -> bool:
    try:
        text.encode(stream.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def render(results: Sequence[CheckResult], unicode: bool = True) -> str:
    width = max(len(r.name) for r in results)
    mark_width = max(len(m[0 if unicode else 1]) for m in _MARKS.values())
    lines = []
    for r in results:
        mark = _MARKS[r.status][0 if unicode else 1].ljust(mark_width)
        label = r.status.value + ": " if r.status is Status.NOT_CONFIGURED else ""
        lines.append(f"{mark} {r.name.ljust(width)}  {label}{r.summary}")
        if len(r.problems) > 1 or (r.problems and r.problems[0].what != r.summary):
            for p in r.problems:
                lines.append(f"    {p.what}")
                lines.append(f"      fix: {p.fix}")
        else:
            lines.extend(f"      fix: {p.fix}" for p in r.problems)
    failed = [r.name for r in results if not r.holds]
    if failed:
        lines.append(f"{len(failed)} of {len(results)} checks failed: {', '.join(failed)}")
    else:
        lines.append(f"all {len(results)} checks hold")
    text = "\n".join(lines)
    return text if unicode else text.encode("ascii", "replace").decode("ascii")


def doctor_main(
    config_path: Path, as_json: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S
) -> int:
    root = logging.getLogger()
    if not root.handlers:
        # The checks' libraries log warnings (a refused connection is the point of one);
        # the report says it all, so nothing reaches stderr through logging's last resort.
        root.addHandler(logging.NullHandler())
    results = asyncio.run(run_checks(config_path, timeout_s))
    ok = all(r.holds for r in results)
    if as_json:
        print(json.dumps({"ok": ok, "checks": [r.to_dict() for r in results]}, indent=1))
    else:
        print(render(results, unicode=_can_encode(sys.stdout, "✓✗–")))
    return EXIT_OK if ok else EXIT_PROBLEMS
