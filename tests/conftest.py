"""Session-wide real servers: one Synapse and one nats-server on free loopback ports.

A server that cannot start fails the run with its log; nothing is ever skipped.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from fleet.local.cluster import NatsCluster
from fleet.local.nats import NatsServer
from fleet.local.synapse import Account, SynapseServer

_users = itertools.count()


@pytest.fixture(scope="session")
async def synapse(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SynapseServer]:
    server = SynapseServer(tmp_path_factory.mktemp("synapse"))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(scope="session")
async def nats_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[NatsServer]:
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def own_nats(tmp_path: Path) -> AsyncIterator[NatsServer]:
    """A private nats-server: for tests that restart it or need streams of their own."""
    server = NatsServer(tmp_path / "own-nats")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def nats_cluster(tmp_path: Path) -> AsyncIterator[NatsCluster]:
    """A private three-node JetStream cluster, a meta leader elected: for replicated
    streams, and tests that kill nodes."""
    cluster = NatsCluster(tmp_path / "nats-cluster", 3)
    await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.stop()


@pytest.fixture
def new_user(synapse: SynapseServer) -> Callable[[str], Awaitable[Account]]:
    """Fresh, unique accounts per test keep tests independent on the shared server."""

    async def make(prefix: str = "user") -> Account:
        return await synapse.register(f"{prefix}{next(_users)}")

    return make
