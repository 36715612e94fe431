"""A JetStream cluster of nats-servers on loopback: `fleet up --nats-cluster 3` and tests.

Each node is a `NatsServer` (fleet/local/nats.py) with its own server name, its own store
directory and one shared cluster name. Clients bind any free port (`-p -1`, read back from
the ports file, as for a single server); the cluster ports cannot be chosen that way.
nats-server 2.9 refuses to start a JetStream cluster node without configured routes
("JetStream cluster requires configured routes"), and a route names the other node's
cluster port, so every port must be known before the first node starts. They are
reserved here (bound to port 0 and released: `free_port`) and then kept, like Synapse's
port in `fleet up`; in the instant between, another process could take one, which the
node reports as "Error listening on router port": a cluster whose ports were picked here
then tries once more with fresh ones. Kept ports are never moved silently.

Routes need credentials of their own: a local process that could open a route would
see every message of every account, whatever the users' permissions. Each cluster start
makes a random route password, which lives only in the nodes' private config files.

Every node lists every node's route, itself included (nats-server skips its own), so the
JetStream meta group knows its full size from the start rather than growing into it.
`start` returns once every node names the same meta leader, read from each node's
monitoring endpoint (`/jsz`, on a loopback port of its own choosing): the cluster can then
place streams. Monitoring is on loopback only and shows no secrets (public keys, names).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

from fleet.local.nats import NatsServer
from fleetcore.proc import ServerStartError, free_port, log_tail

CLUSTER_NAME = "fleet"
ROUTE_PORT_TAKEN = "Error listening on router port"
# Where a node's own part of its config file begins: the users above it are the fleet's
# (the same on every node), what follows is the node's (name, routes, route password).
NODE_MARKER = "# A node of the fleet's local JetStream cluster (fleet/local/cluster.py)."


class NatsCluster:
    def __init__(
        self,
        data_dir: Path,
        size: int = 3,
        *,
        config: str | None = None,
        client_ports: list[int] | None = None,
        cluster_ports: list[int] | None = None,
        binary: str | None = None,
        name: str = CLUSTER_NAME,
    ) -> None:
        if size < 1:
            raise ValueError("a cluster has at least one node")
        for given in (client_ports, cluster_ports):
            if given is not None and len(given) != size:
                raise ValueError(f"{len(given)} ports for a cluster of {size}")
        self.data_dir = data_dir
        self.size = size
        self.name = name
        # Users, permissions, TLS: the same for every node (fleetcore/bus/auth.py).
        self.config = config
        self.binary = binary
        self._picked_here = cluster_ports is None
        self._route_password = secrets.token_urlsafe(24)
        self.cluster_ports = list(cluster_ports) if cluster_ports else self._pick()
        self.nodes = [
            NatsServer(
                data_dir / self.node_name(i),
                port=client_ports[i] if client_ports else None,
                binary=binary,
                config=self._node_config(i),
            )
            for i in range(size)
        ]
        # Seconds from the first node's spawn to a meta leader every node names.
        self.meta_leader_seconds: float | None = None

    def node_name(self, i: int) -> str:
        return f"{self.name}-n{i + 1}"

    def _pick(self) -> list[int]:
        return [free_port() for _ in range(self.size)]

    def _node_config(self, i: int) -> str:
        login = f"route:{self._route_password}"
        routes = [f"nats://{login}@127.0.0.1:{port}" for port in self.cluster_ports]
        cluster = {
            "name": self.name,
            "listen": f"127.0.0.1:{self.cluster_ports[i]}",
            "authorization": {"user": "route", "password": self._route_password},
            "routes": routes,
        }
        parts = [
            self.config or "",
            NODE_MARKER,
            f"server_name: {json.dumps(self.node_name(i))}",
            'http: "127.0.0.1:-1"',
            "cluster: " + json.dumps(cluster, indent=2),
        ]
        return "\n".join(parts) + "\n"

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    @property
    def client_ports(self) -> list[int | None]:
        return [node.port for node in self.nodes]

    async def start(self, deadline_s: float = 30.0) -> None:
        t0 = time.monotonic()
        try:
            await self._start_all(deadline_s)
        except ServerStartError as exc:
            if not (self._picked_here and ROUTE_PORT_TAKEN in str(exc)):
                raise
            self.cluster_ports = self._pick()  # taken in the instant after free_port()
            for i, node in enumerate(self.nodes):
                node.config = self._node_config(i)
            await self._start_all(deadline_s)
        await self.wait_for_meta_leader(deadline_s)
        self.meta_leader_seconds = time.monotonic() - t0

    async def _start_all(self, deadline_s: float) -> None:
        results = await asyncio.gather(
            *(node.start(deadline_s) for node in self.nodes), return_exceptions=True
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            await self.stop()
            first = failed[0]
            if isinstance(first, ServerStartError):
                raise first
            raise ServerStartError(f"nats cluster did not start: {first!r}") from first

    async def stop(self) -> None:
        for node in self.nodes:
            await node.stop()

    async def kill_node(self, i: int) -> None:
        """SIGKILL node `i`, as a crash would: no goodbye to its peers."""
        node = self.nodes[i]
        if node.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(node.pid, signal.SIGKILL)
        await node.stop()  # reaps it

    async def start_node(self, i: int, deadline_s: float = 30.0) -> None:
        """Start node `i` again on its ports and store; it catches up from its peers."""
        await self.nodes[i].start(deadline_s)

    def running(self) -> list[int]:
        return [i for i, node in enumerate(self.nodes) if node.pid is not None]

    async def meta(self, i: int) -> dict[str, Any] | None:
        """Node `i`'s view of the JetStream meta group (`/jsz`'s `meta_cluster`)."""
        node = self.nodes[i]
        if node.pid is None:
            return None
        port = _monitoring_port(node)
        if port is None:
            return None
        try:
            jsz = await asyncio.to_thread(_get_json, f"http://127.0.0.1:{port}/jsz")
        except (OSError, ValueError):
            return None
        meta = jsz.get("meta_cluster")
        return meta if isinstance(meta, dict) else None

    async def meta_leader(self) -> str | None:
        """The meta leader's server name if every running node names the same one."""
        views = [await self.meta(i) for i in self.running()]
        leaders = {(v or {}).get("leader") for v in views}
        if len(leaders) != 1:
            return None
        leader = leaders.pop()
        return leader if isinstance(leader, str) and leader else None

    async def wait_for_meta_leader(self, deadline_s: float = 30.0) -> str:
        t0 = time.monotonic()
        while True:
            leader = await self.meta_leader()
            if leader is not None:
                return leader
            if time.monotonic() - t0 > deadline_s:
                logs = "\n".join(
                    f"--- {self.node_name(i)}\n{log_tail(node.log_path, 10)}"
                    for i, node in enumerate(self.nodes)
                )
                raise ServerStartError(f"the nats cluster elected no meta leader:\n{logs}")
            await asyncio.sleep(0.05)  # polling servers' monitoring, not test synchronisation

    def node_index(self, server_name: str) -> int:
        return next(i for i in range(self.size) if self.node_name(i) == server_name)


def with_users(node_config: str, users_config: str) -> str:
    """A node's config file text with the fleet's users replaced by `users_config`.

    For `fleet agent add/remove`, another process than the one that started the cluster:
    the node's own part (its routes and the route password, which lives nowhere else) is
    kept as the file has it.
    """
    at = node_config.find(NODE_MARKER)
    if at < 0:
        raise ValueError("not a fleet cluster node's configuration (no node marker)")
    return f"{users_config}\n{node_config[at:]}"


def _monitoring_port(node: NatsServer) -> int | None:
    """From the node's ports file (`<exe>_<pid>.ports`), as NatsServer reads its client port."""
    for path in node.ports_dir.glob(f"*_{node.pid}.ports"):
        try:
            urls = json.loads(path.read_text())["monitoring"]
            return int(urls[0].rsplit(":", 1)[1])
        except (OSError, ValueError, KeyError, IndexError):
            return None
    return None


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=2) as resp:
        data = json.loads(resp.read())
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


# ---- `fleet up --nats-cluster N` ---------------------------------------------------------

CLUSTER_DIR = "nats-cluster"


def cluster_ports_key(i: int) -> tuple[str, str]:
    """The names of node `i`'s client and cluster ports in `fleet up`'s ports.json."""
    return f"nats-n{i + 1}", f"nats-n{i + 1}-cluster"


def local_cluster(
    state_dir: Path, size: int, config: str | None, saved: dict[str, int]
) -> NatsCluster:
    """`fleet up`'s cluster under `state_dir/nats-cluster/`, on the ports an earlier run
    kept (all of them, or none: a cluster's routes are all or nothing)."""
    keys = [cluster_ports_key(i) for i in range(size)]
    kept = all(client in saved and route in saved for client, route in keys)
    return NatsCluster(
        state_dir / CLUSTER_DIR,
        size,
        config=config,
        client_ports=[saved[client] for client, _ in keys] if kept else None,
        cluster_ports=[saved[route] for _, route in keys] if kept else None,
    )


def ports_to_keep(cluster: NatsCluster) -> dict[str, int]:
    out: dict[str, int] = {}
    for i, port in enumerate(cluster.client_ports):
        if port is None:
            raise ServerStartError(f"{cluster.node_name(i)} did not report its port")
        client, route = cluster_ports_key(i)
        out[client] = port
        out[route] = cluster.cluster_ports[i]
    return out


def node_dirs(state_dir: Path) -> list[Path]:
    """Every cluster node's data directory a run left (for stopping orphans)."""
    return sorted(p for p in (state_dir / CLUSTER_DIR).glob(f"{CLUSTER_NAME}-n*") if p.is_dir())


def bus_servers(nats: NatsServer | NatsCluster) -> dict[str, object]:
    """The `bus:` keys that say where the fleet's NATS is and how many copies it keeps."""
    if isinstance(nats, NatsCluster):
        return {"servers": nats.urls, "replicas": nats.size}
    return {"servers": [nats.url]}
