"""The fleet's one configuration object.

Everything a process needs is read once from YAML into typed, validated models. Unknown keys
are errors (a typo must never pass silently) and every problem names its key path, so
`fleet config check` can print them all at once. Secrets are references (`{env: X}` /
`{file: P}`), never values, so the YAML can be shared and nothing leaks on a command line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fleetcore.bus.config import BusConfig
from fleetcore.config.burn import BurnConfig
from fleetcore.config.wolves import WolvesConfig
from fleetcore.forge.config import GiteaConfig, ProjectConfig
from fleetcore.models.config import ChainConfig, ModelConfig, ProviderConfig, chain_warnings
from fleetcore.safety.protocol import SafetyConfig
from fleetcore.secrets import SecretRef

USER_ID_RE = re.compile(r"^@[!-9;-~]+:[A-Za-z0-9.\-]+(:\d+)?$")
# A room alias `#name:server`, or a room ID: `!opaque:server`, or from room version 12 on
# (as Synapse now makes them) `!` and the create event's hash, with no server part.
ROOM_RE = re.compile(r"^(?:#[^:\s]+:[A-Za-z0-9.\-]+(:\d+)?|![^:\s]+(?::[A-Za-z0-9.\-]+(:\d+)?)?)$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("not a URL (expected http:// or https://)")
    return value.rstrip("/")


def _check_user_id(value: str) -> str:
    if not USER_ID_RE.match(value):
        raise ValueError(f"not a Matrix user ID (expected @user:server): {value!r}")
    return value


class TrustPolicy(StrEnum):
    """How the bot decides which operator devices get room keys and are believed.

    `identity-tofu` pins each operator's cross-signing master key on first sight and trusts
    the devices it signs; `tofu` trusts each operator device on first sight; `verified-only`
    trusts only devices signed by a master key pinned in the config.
    """

    IDENTITY_TOFU = "identity-tofu"
    TOFU = "tofu"
    VERIFIED_ONLY = "verified-only"


class TrustConfig(_Section):
    policy: TrustPolicy = TrustPolicy.IDENTITY_TOFU
    allow_unsigned_devices: bool = False
    # user id -> master key (unpadded base64), required for `verified-only`.
    pinned_identities: dict[str, str] = Field(default_factory=dict)

    @field_validator("pinned_identities")
    @classmethod
    def _pinned_users(cls, value: dict[str, str]) -> dict[str, str]:
        for user in value:
            _check_user_id(user)
        return value


class MatrixConfig(_Section):
    homeserver: str
    user_id: str
    password: SecretRef | None = None
    access_token: SecretRef | None = None
    device_name: str = "hermes-fleet"
    sync_timeout_ms: int = Field(30_000, ge=1_000, le=300_000)
    trust: TrustConfig = Field(default_factory=TrustConfig)

    _url = field_validator("homeserver")(classmethod(lambda cls, v: _check_url(v)))
    _uid = field_validator("user_id")(classmethod(lambda cls, v: _check_user_id(v)))

    @model_validator(mode="after")
    def _one_credential(self) -> MatrixConfig:
        if self.password is None and self.access_token is None:
            raise ValueError("give `password` or `access_token` (as {env: NAME} or {file: PATH})")
        return self


class FleetConfig(_Section):
    state_dir: Path = Path("~/.hermes")
    soul: Path = Path("SOUL.md")
    log_level: str = Field("info", pattern="^(debug|info|warning|error)$")
    matrix: MatrixConfig
    operators: list[str] = Field(min_length=1)
    # Where crisis alerts, new-device and changed-identity notices go.
    operators_room: str | None = None
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    # The model fallback chain: the primary, then the others in order.
    model: ModelConfig | None = None
    fallback_providers: list[ProviderConfig] = Field(default_factory=list)
    chain: ChainConfig = Field(default_factory=ChainConfig)
    # The forge, and the projects whose repos and rooms the bot connects.
    gitea: GiteaConfig | None = None
    projects: dict[str, ProjectConfig] = Field(default_factory=dict)
    # The NATS bus between the bot and the wolves; burns, and what wolves may do.
    bus: BusConfig | None = None
    burn: BurnConfig = Field(default_factory=BurnConfig)
    wolves: WolvesConfig = Field(default_factory=WolvesConfig)

    @field_validator("operators")
    @classmethod
    def _operators(cls, value: list[str]) -> list[str]:
        return [_check_user_id(v) for v in value]

    @field_validator("operators_room")
    @classmethod
    def _room(cls, value: str | None) -> str | None:
        if value is not None and not ROOM_RE.match(value):
            raise ValueError("not a room ID or alias (expected !id, !id:server or #alias:server)")
        return value

    @model_validator(mode="after")
    def _model_provider_known(self) -> FleetConfig:
        if self.model is not None:
            names = {p.provider for p in self.fallback_providers}
            if self.model.provider not in names:
                raise ValueError(
                    f"model.provider: {self.model.provider!r} is not one of fallback_providers "
                    f"({', '.join(sorted(names)) or 'none configured'})"
                )
        return self

    @model_validator(mode="after")
    def _projects_need_gitea(self) -> FleetConfig:
        if self.projects and self.gitea is None:
            raise ValueError("projects: configured, but there is no gitea: section to reach them")
        for name in self.projects:
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
                raise ValueError(f"projects.{name}: names use letters, digits, - and _")
        return self

    @property
    def bot_dir(self) -> Path:
        return self.state_dir.expanduser() / "bot"

    def warnings(self) -> list[str]:
        """Things that work but that a careful operator wants to hear about."""
        out: list[str] = []
        if self.model is not None or self.fallback_providers:
            out.extend(chain_warnings(self.model, self.fallback_providers))
        if self.operators_room is None:
            out.append("operators_room: not set; crisis alerts go to the room they came from")
        return out


@dataclass(frozen=True)
class ConfigProblem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(Exception):
    """Every problem in a config file, each with its key path."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(str(p) for p in problems))


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _problems(exc: ValidationError) -> list[ConfigProblem]:
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        msg = msg.removeprefix("Value error, ")
        problems.append(ConfigProblem(_loc_to_path(loc), msg))
    return problems


def parse_config(data: Any, source: str = "<config>", base_dir: Path | None = None) -> FleetConfig:
    if not isinstance(data, dict):
        raise ConfigError(source, [ConfigProblem("", "the top level must be a mapping of keys")])
    try:
        cfg = FleetConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _problems(exc)) from None
    if base_dir is not None and not cfg.soul.is_absolute():
        cfg = cfg.model_copy(update={"soul": (base_dir / cfg.soul)})
    return cfg


# A configuration is a few KB. Beyond these it is not one, and PyYAML is not asked to try:
# its composer recurses once per level (RecursionError past a few hundred) and its scanner
# pays for every open flow level on every token.
MAX_CONFIG_BYTES = 1 << 20
MAX_NESTING = 32
MAX_ALIASES = 100


def _check_shape(text: str) -> str | None:
    """What makes `text` too deep or too aliased to load, read from PyYAML's event stream.

    The scanner and parser are loops, not recursion, so this pass is safe on any input; it
    stops at the first level past the limit, so a deep nest costs no more than the limit.
    Aliases are counted because each can stand for a whole tree (a "billion laughs").
    """
    depth = aliases = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                return f"nested more than {MAX_NESTING} levels deep"
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                return f"more than {MAX_ALIASES} aliases (*name)"
    return None


def config_from_text(
    text: str, source: str = "<config>", base_dir: Path | None = None
) -> FleetConfig:
    """Any text gives a FleetConfig or a ConfigError; nothing else escapes.

    PyYAML's constructors raise plain ValueError for a date like 2001-02-30 or an
    `!!int abc`, so those are caught beside YAMLError; RecursionError cannot happen after
    the shape check, and is caught anyway as a second line.
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
        raise ConfigError(source, [ConfigProblem("", f"larger than {MAX_CONFIG_BYTES} bytes")])
    try:
        too_much = _check_shape(text)
        if too_much is not None:
            raise ConfigError(source, [ConfigProblem("", too_much)])
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(source, [ConfigProblem("", f"{where}not valid YAML")]) from None
    except (ValueError, RecursionError) as exc:
        message = f"a value YAML cannot read: {str(exc)[:80]}"
        raise ConfigError(source, [ConfigProblem("", message)]) from None
    return parse_config(data, source, base_dir)


def load_config(path: Path) -> FleetConfig:
    """Load and validate; relative `soul` paths are resolved against the config's folder."""
    source = str(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(source, [ConfigProblem("", f"cannot read: {exc.strerror}")]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(source, [ConfigProblem("", f"larger than {MAX_CONFIG_BYTES} bytes")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = ConfigProblem("", f"not UTF-8 text (byte {exc.start})")
        raise ConfigError(source, [problem]) from None
    return config_from_text(text, source, base_dir=path.parent.resolve())


def check_secrets(cfg: FleetConfig) -> list[ConfigProblem]:
    """Secrets are only looked up, never printed: a missing one is reported by where it lives."""
    refs: list[tuple[str, SecretRef | None]] = [
        ("matrix.password", cfg.matrix.password),
        ("matrix.access_token", cfg.matrix.access_token),
    ]
    if cfg.gitea is not None:
        refs.append(("gitea.token", cfg.gitea.token))
        if cfg.gitea.webhook is not None:
            refs.append(("gitea.webhook.secret", cfg.gitea.webhook.secret))
    out = []
    for i, p in enumerate(cfg.fallback_providers):
        if p.api_key_env is not None and not os.environ.get(p.api_key_env):
            out.append(
                ConfigProblem(
                    f"fallback_providers[{i}].api_key_env",
                    f"secret not available (env:{p.api_key_env})",
                )
            )
    for path, ref in refs:
        if ref is not None and not ref.available():
            out.append(ConfigProblem(path, f"secret not available ({ref.describe()})"))
    return out
