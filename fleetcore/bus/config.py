"""Bus settings, shared by the bot and the wolves so both sides agree on timings."""

from __future__ import annotations

from pathlib import Path
from typing import Self
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# A leader failover on a three-node cluster took 4-10 s on a loaded machine
# (tests/burn/test_burn_cluster.py); heartbeats must outlive it with room to spare.
MIN_CLUSTER_HEARTBEAT_TTL_S = 12.0


class BusConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # One server, or several nodes of one cluster: the client fails over between them.
    servers: list[str] = Field(default_factory=lambda: ["nats://127.0.0.1:4222"], min_length=1)
    # Copies of every stream and bucket the fleet creates: 1 for a single server, 3 for a
    # cluster of three (any one node may die). More than the cluster's JetStream servers
    # fails at start, naming this key (fleetcore/bus/streams.py). JetStream allows at most 5.
    replicas: int = Field(1, ge=1, le=5)
    # A wolf on a leaf node reaches the hub's JetStream through the hub's domain
    # (`jetstream { domain: ... }` on the hub); None: the server it connects to has it.
    jetstream_domain: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # A file, never a value: a seed on the command line or in the config would leak via
    # `ps`, shell history or a pasted config.
    nkey_seed_file: Path | None = None
    tls_ca_file: Path | None = None
    # Mutual TLS: the client's own certificate and key, for a server with `verify: true`.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # How long a wolf may hold a task without a sign of life before it goes to another wolf;
    # wolves send `in_progress()` while a model is thinking.
    ack_wait_s: float = Field(60.0, gt=0)
    # A task that keeps killing wolves stops being retried after this many deliveries.
    max_deliver: int = Field(5, ge=1)
    # A re-sent burn within this window does not queue its tasks twice.
    duplicate_window_s: float = Field(600.0, gt=0)
    heartbeat_s: float = Field(3.0, gt=0)
    # A wolf silent this long is dead: its registry entry expires and its claims go stale.
    heartbeat_ttl_s: float = Field(15.0, gt=0)
    # First reconnect delay; it doubles per failed attempt up to reconnect_max_wait_s.
    reconnect_wait_s: float = Field(1.0, gt=0)
    reconnect_max_wait_s: float = Field(30.0, gt=0)

    @field_validator("servers")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for url in value:
            parsed = urlparse(url)
            if parsed.scheme not in ("nats", "tls") or not parsed.hostname:
                raise ValueError(f"{url!r} is not a NATS URL (expected nats://host:port or tls://)")
            try:
                parsed.port  # noqa: B018 - raises on a non-numeric or out-of-range port
            except ValueError as exc:
                raise ValueError(f"{url!r} has a bad port") from exc
            if parsed.username or parsed.password:
                raise ValueError(f"{url!r} carries credentials; use nkey_seed_file instead")
        return value

    @model_validator(mode="after")
    def _timings(self) -> Self:
        if self.heartbeat_ttl_s <= self.heartbeat_s:
            raise ValueError(
                "heartbeat_ttl_s must exceed heartbeat_s, or a live wolf would flicker dead "
                "between beats"
            )
        if self.replicas > 1 and self.heartbeat_ttl_s < MIN_CLUSTER_HEARTBEAT_TTL_S:
            raise ValueError(
                f"heartbeat_ttl_s must be at least {MIN_CLUSTER_HEARTBEAT_TTL_S:g} with "
                "replicas > 1: while a killed node's streams elect new leaders (seconds) no "
                "heartbeat lands, and a live wolf that looks dead has its claims taken over"
            )
        if self.reconnect_max_wait_s < self.reconnect_wait_s:
            raise ValueError("reconnect_max_wait_s must be at least reconnect_wait_s")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together (a client certificate)")
        return self

    @property
    def uses_tls(self) -> bool:
        return any(urlparse(url).scheme == "tls" for url in self.servers)
