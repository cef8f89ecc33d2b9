"""Helpers for agent tests: leases for a check, free/refused ports, a self-signed certificate."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from probe_agent.spool import Spool
from shared.checks import CheckSpec
from shared.protocol import CheckResult, Lease


def make_lease(
    check: CheckSpec, *, lease_id: str | None = None, allow_private: bool = True
) -> Lease:
    """A lease for ``check``. Agent tests probe servers on 127.0.0.1, so the SSRF guard is off
    unless ``allow_private=False`` (what a lease of a guarded region carries)."""
    now = datetime.now(UTC)
    return Lease(
        lease_id=lease_id or f"lease-{uuid.uuid4().hex[:8]}",
        target_id=str(uuid.uuid4()),
        region="test-region",
        scheduled_at=now,
        expires_at=now + timedelta(minutes=1),
        interval_secs=60,
        check=check,
        org_id=str(uuid.uuid4()),
        allow_private=allow_private,
    )


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def self_signed_server_context(directory: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1 and localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return server_context(
        directory / "cert.pem", cert.public_bytes(serialization.Encoding.PEM), key
    )


def server_context(
    cert_file: Path, chain: bytes, key: ec.EllipticCurvePrivateKey
) -> ssl.SSLContext:
    """A server TLS context presenting ``chain`` (PEM), written to ``cert_file`` and its key
    beside it (``.key``): ``ssl`` loads certificates only from files."""
    key_file = cert_file.with_suffix(".key")
    cert_file.write_bytes(chain)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


T0 = datetime(2030, 1, 1, tzinfo=UTC)


def results(start: int, n: int) -> list[CheckResult]:
    """Results whose lease_id carries their sequence number."""
    return [
        CheckResult(
            lease_id=f"lease-{i:05d}",
            target_id="0192a1ce-0000-7000-8000-000000000001",
            scheduled_at=T0 + timedelta(seconds=i),
            started_at=T0 + timedelta(seconds=i),
            finished_at=T0 + timedelta(seconds=i, milliseconds=5),
            status="down",
            latency_ms=5.0,
            error="connection refused",
            error_code="CONNECTION_REFUSED",
        )
        for i in range(start, start + n)
    ]


def drain(spool: Spool, limit: int = 7) -> list[str]:
    out: list[str] = []
    while (chunk := spool.peek(limit)) is not None:
        assert len(chunk.results) <= limit
        out.extend(r.lease_id for r in chunk.results)
        spool.commit(chunk)
    return out


def ids(start: int, n: int) -> list[str]:
    return [r.lease_id for r in results(start, n)]
