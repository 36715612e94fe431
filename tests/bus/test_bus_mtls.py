"""Mutual TLS with the fleet's own CA (fleetcore/bus/pki.py) and NKey auth together, on a
real nats-server: a client needs both a certificate from the CA and a known key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from fleet.local.nats import NatsServer, ensure_nkey_seed
from fleetcore.bus.auth import AgentUser, BusUsers, TLSFiles, server_config
from fleetcore.bus.config import BusConfig
from fleetcore.bus.connect import BusAuthError, BusTLSError, connect
from fleetcore.bus.pki import FleetCA, Issued


@dataclass
class MTLS:
    server: NatsServer
    ca: Path
    pki: Path
    keys: Path
    client: Issued

    def cfg(self, seed: str, client: Issued | None, ca: Path | None = None) -> BusConfig:
        return BusConfig(
            servers=[f"tls://127.0.0.1:{self.server.port}"],
            nkey_seed_file=self.keys / f"{seed}.nk",
            tls_ca_file=ca or self.ca,
            tls_cert_file=client.cert if client else None,
            tls_key_file=client.key if client else None,
            reconnect_wait_s=0.05,
            reconnect_max_wait_s=0.2,
        )


@pytest.fixture
async def mtls(tmp_path: Path) -> AsyncIterator[MTLS]:
    pki, keys = tmp_path / "pki", tmp_path / "keys"
    ca = FleetCA.load_or_create(pki)
    server = ca.issue_server(["127.0.0.1", "localhost"], pki / "server.pem", pki / "server-key.pem")
    client = ca.issue_client("alice", pki / "alice.pem", pki / "alice-key.pem")
    users = BusUsers(
        ensure_nkey_seed(keys / "bot.nk"),
        (AgentUser("alice", ensure_nkey_seed(keys / "alice.nk"), "work"),),
    )
    conf = server_config(users, TLSFiles(server.cert, server.key, pki / "ca.pem"))
    nats = NatsServer(tmp_path / "nats", config=conf)
    await nats.start()
    try:
        yield MTLS(nats, pki / "ca.pem", pki, keys, client)
    finally:
        await nats.stop()


async def test_a_client_with_a_certificate_from_the_ca_connects(mtls: MTLS) -> None:
    nc = await connect(mtls.cfg("alice", mtls.client), "wolf-alice", first_connect_timeout_s=10)
    try:
        await nc.flush(timeout=5)
        assert nc.is_connected and nc.connected_url is not None
        assert nc.connected_url.scheme == "tls"
    finally:
        await nc.close()


async def test_a_client_without_a_certificate_is_refused(mtls: MTLS) -> None:
    # No timeout: the server's TLS alert must end the attempt by itself.
    with pytest.raises(BusTLSError, match="refused wolf-alice's client certificate: none"):
        await connect(mtls.cfg("alice", None), "wolf-alice")


async def test_a_certificate_from_another_ca_is_refused(mtls: MTLS, tmp_path: Path) -> None:
    other = FleetCA.load_or_create(tmp_path / "other-pki")
    forged = other.issue_client("alice", tmp_path / "other-pki/a.pem", tmp_path / "other-pki/k.pem")
    with pytest.raises(BusTLSError, match="refused wolf-alice's client certificate"):
        await connect(mtls.cfg("alice", forged), "wolf-alice")


async def test_a_certificate_is_not_a_key(mtls: MTLS) -> None:
    # TLS admits the client; its NKey still has to be one the server knows.
    ensure_nkey_seed(mtls.keys / "stranger.nk")
    with pytest.raises(BusAuthError, match="rejected wolf-stranger"):
        await connect(mtls.cfg("stranger", mtls.client), "wolf-stranger")


def test_the_ca_is_made_once_and_issues_what_tls_checks(mtls: MTLS) -> None:
    again = FleetCA.load_or_create(mtls.pki)
    assert again.cert_pem == mtls.ca.read_bytes()
    for path in mtls.pki.iterdir():
        assert path.stat().st_mode & 0o077 == 0, path
    cert = x509.load_pem_x509_certificate((mtls.pki / "server.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
