"""tls:// URLs: the client verifies the server against the configured CA."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fleet.local.nats import NatsServer
from fleetcore.bus.config import BusConfig
from fleetcore.bus.connect import BusTLSError, connect
from fleetcore.bus.messages import Task, publish_task
from fleetcore.bus.streams import ensure_streams, queue_depth


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_pki(d: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("fleet test CA"))
        .issuer_name(_name("fleet test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    d.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = d / "ca.pem", d / "server.pem", d / "server-key.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path


@pytest.fixture
async def tls_server(
    tmp_path: Path, configured_nats: Callable[[Path, str], NatsServer]
) -> AsyncIterator[tuple[NatsServer, Path]]:
    ca, cert, key = _write_pki(tmp_path / "pki")
    conf = f'tls {{\n  cert_file: "{cert}"\n  key_file: "{key}"\n}}\n'
    server = configured_nats(tmp_path / "tls-nats", conf)
    await server.start()
    try:
        yield server, ca
    finally:
        await server.stop()


async def test_tls_with_the_right_ca(
    tls_server: tuple[NatsServer, Path], make_config: Callable[..., BusConfig]
) -> None:
    server, ca = tls_server
    cfg = make_config(f"tls://127.0.0.1:{server.port}", tls_ca_file=ca)
    nc = await connect(cfg, "wolf-tls", first_connect_timeout_s=10)
    try:
        js = nc.jetstream()
        await ensure_streams(js, cfg)
        await publish_task(js, Task.new("b-tls", "hermes", "fleet/hermes", 1, "fast"))
        assert await queue_depth(js, "fast") == 1
    finally:
        await nc.close()


async def test_tls_refuses_a_server_the_ca_did_not_sign(
    tls_server: tuple[NatsServer, Path], make_config: Callable[..., BusConfig], tmp_path: Path
) -> None:
    server, _ = tls_server
    other_ca, _, _ = _write_pki(tmp_path / "other-pki")
    cfg = make_config(f"tls://127.0.0.1:{server.port}", tls_ca_file=other_ca)
    with pytest.raises(BusTLSError, match="does not verify against"):
        await connect(cfg, "wolf-mitm")  # fails by itself: no timeout needed
