"""Bus test helpers: clients on the session nats-server, private servers, unique names.

The session server's streams are shared by every test, so each test works on its own tier
and burn ids (`uid()`); a test that must change server-wide settings (a tiny TTL, a
restart, auth) runs its own nats-server in its tmp dir instead. Helpers are handed out as
fixtures because test modules cannot import a conftest under --import-mode=importlib.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js.client import JetStreamContext

from fleet.local.nats import NatsServer, find_nats_server
from fleetcore.bus.config import BusConfig
from fleetcore.bus.connect import connect
from fleetcore.bus.streams import ensure_streams

Uid = Callable[[str], str]
MakeConfig = Callable[..., BusConfig]
ConfiguredNats = Callable[[Path, str], NatsServer]


def _uid(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def _bus_config(url: str, **kw: Any) -> BusConfig:
    """Fast reconnects so a restart test does not wait out production backoff."""
    return BusConfig(servers=[url], reconnect_wait_s=0.05, reconnect_max_wait_s=0.2, **kw)


@pytest.fixture
def uid() -> Uid:
    return _uid


@pytest.fixture
def make_config() -> MakeConfig:
    return _bus_config


@pytest.fixture
def configured_nats() -> ConfiguredNats:
    return _configured_nats


@pytest.fixture
def cfg(nats_server: NatsServer) -> BusConfig:
    return _bus_config(nats_server.url)


@pytest.fixture
async def nc(cfg: BusConfig) -> AsyncIterator[Client]:
    client = await connect(cfg, _uid("test-"), first_connect_timeout_s=10)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def js(nc: Client, cfg: BusConfig) -> JetStreamContext:
    jsc = nc.jetstream()
    await ensure_streams(jsc, cfg)
    return jsc


def _configured_nats(data_dir: Path, config_text: str) -> NatsServer:
    """A NatsServer that also reads a config file (for auth), by a wrapper as its binary.

    Command-line flags (port, JetStream dir, log) still come from NatsServer and override
    the file, so its readiness check and shutdown are reused unchanged.
    """
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    conf = data_dir / "server.conf"
    conf.write_text(config_text)
    wrapper = data_dir / "nats-server-with-config"
    wrapper.write_text(f'#!/bin/sh\nexec "{find_nats_server()}" -c "{conf}" "$@"\n')
    wrapper.chmod(0o700)
    return NatsServer(data_dir, binary=str(wrapper))
