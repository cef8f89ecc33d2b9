"""tls_cert checks against real TLS servers on 127.0.0.1 with certificates made for each test:
issued by a test CA, self-signed, expiring soon and expired."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from probe_agent.checks import RUNNERS, run_lease
from probe_agent.checks.expiry import days_remaining, expiry_status
from probe_agent.checks.tls_cert import TlsCertRunner
from shared.checks import TlsCertCheck
from shared.protocol import CheckResult
from tests.probe_agent.helpers import closed_port, make_lease, server_context

CA_NAME = "Vigil Test CA"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass
class Issuer:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def make_ca() -> Issuer:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(CA_NAME))
        .issuer_name(_name(CA_NAME))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=3650))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Issuer(key, cert)


def make_leaf(
    directory: Path,
    *,
    common_name: str,
    not_after: datetime,
    issuer: Issuer | None = None,
) -> ssl.SSLContext:
    """A server context for a certificate valid until ``not_after`` (self-signed without
    ``issuer``); the chain includes the CA so the server presents a realistic chain."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.cert.subject if issuer else _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - timedelta(days=400))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
    )
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    chain = cert.public_bytes(serialization.Encoding.PEM)
    if issuer:
        chain += issuer.cert.public_bytes(serialization.Encoding.PEM)
    return server_context(directory / f"{common_name}-{not_after.timestamp():.0f}.pem", chain, key)


@dataclass
class TlsServer:
    port: int
    # The SNI of every handshake (None: the client sent none).
    server_names: list[str | None] = field(default_factory=list)


Serve = Callable[[ssl.SSLContext], Awaitable[TlsServer]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[asyncio.Server] = []

    async def start(ctx: ssl.SSLContext) -> TlsServer:
        info = TlsServer(port=0)

        def on_sni(_obj: Any, name: str | None, _ctx: ssl.SSLContext) -> None:
            info.server_names.append(name)

        ctx.sni_callback = on_sni

        async def handle(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
        servers.append(server)
        info.port = server.sockets[0].getsockname()[1]
        return info

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture(scope="module")
def ca() -> Issuer:
    return make_ca()


def in_days(days: int) -> datetime:
    # An hour past the whole day, so days_remaining is exactly ``days``.
    return datetime.now(UTC) + timedelta(days=days, hours=1)


async def run(port: int, host: str = "127.0.0.1", **kw: Any) -> CheckResult:
    spec = TlsCertCheck(host=host, port=port, **kw)
    return await TlsCertRunner().run(spec, make_lease(spec))


async def test_a_valid_certificate_far_from_expiry_is_up(
    serve: Serve, ca: Issuer, tmp_path: Path
) -> None:
    not_after = in_days(90)
    server = await serve(
        make_leaf(tmp_path, common_name="shop.example.test", not_after=not_after, issuer=ca)
    )
    result = await run(server.port, server_name="shop.example.test")
    assert result.status == "up", result.error
    assert result.error is None and result.error_code is None
    assert result.details == {
        "days_remaining": 90,
        "not_after": not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "subject_common_name": "shop.example.test",
        "issuer_common_name": CA_NAME,
        "address": "127.0.0.1",
    }
    assert result.timings.connect_ms is not None
    assert result.timings.tls_ms is not None
    assert result.timings.dns_ms is None  # an IP literal is not looked up
    assert server.server_names == ["shop.example.test"]


@pytest.mark.parametrize(
    ("days", "status", "code"),
    [
        (10, "degraded", "CERT_EXPIRING"),
        (3, "down", "CERT_EXPIRING"),
        (0, "down", "CERT_EXPIRING"),
        (-2, "down", "CERT_EXPIRED"),
    ],
)
async def test_days_remaining_map_to_status_with_the_facts_as_json_error(
    serve: Serve, ca: Issuer, tmp_path: Path, days: int, status: str, code: str
) -> None:
    not_after = in_days(days)
    server = await serve(
        make_leaf(tmp_path, common_name="api.example.test", not_after=not_after, issuer=ca)
    )
    result = await run(server.port, warn_days=14, critical_days=7)
    assert result.status == status
    assert result.error_code == code
    facts = json.loads(result.error or "")
    assert facts == {
        "days_remaining": days,
        "not_after": not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "subject_common_name": "api.example.test",
        "issuer_common_name": CA_NAME,
    }
    assert {k: result.details[k] for k in facts} == facts


async def test_an_expired_self_signed_certificate_can_still_be_inspected(
    serve: Serve, tmp_path: Path
) -> None:
    server = await serve(make_leaf(tmp_path, common_name="old.test", not_after=in_days(-30)))
    result = await run(server.port)
    assert result.status == "down"
    assert result.error_code == "CERT_EXPIRED"
    facts = json.loads(result.error or "")
    assert facts["days_remaining"] == -30
    assert facts["subject_common_name"] == facts["issuer_common_name"] == "old.test"


async def test_a_self_signed_certificate_far_from_expiry_is_up(
    serve: Serve, tmp_path: Path
) -> None:
    server = await serve(make_leaf(tmp_path, common_name="self.test", not_after=in_days(200)))
    result = await run(server.port)
    assert result.status == "up", result.error
    assert result.details["issuer_common_name"] == "self.test"


async def test_the_thresholds_are_strict_less_than(
    serve: Serve, ca: Issuer, tmp_path: Path
) -> None:
    server = await serve(
        make_leaf(tmp_path, common_name="edge.test", not_after=in_days(14), issuer=ca)
    )
    assert (await run(server.port, warn_days=14, critical_days=7)).status == "up"
    assert (await run(server.port, warn_days=15, critical_days=14)).status == "degraded"
    assert (await run(server.port, warn_days=16, critical_days=15)).status == "down"


async def test_sni_defaults_to_the_host_and_is_never_sent_for_an_ip(
    serve: Serve, ca: Issuer, tmp_path: Path
) -> None:
    server = await serve(
        make_leaf(tmp_path, common_name="localhost", not_after=in_days(60), issuer=ca)
    )
    by_name = await run(server.port, host="localhost")
    assert by_name.status == "up", by_name.error
    assert by_name.details["address"] == "127.0.0.1"
    by_ip = await run(server.port, host="127.0.0.1")
    assert by_ip.status == "up", by_ip.error
    assert server.server_names == ["localhost", None]


async def test_a_plain_tcp_server_is_a_handshake_error(tmp_path: Path) -> None:
    async def greet(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n" * 20)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        result = await run(port)
    finally:
        server.close()
        await server.wait_closed()
    assert result.status == "error"
    assert result.error_code == "TLS_ERROR"
    assert (result.error or "").startswith(f"TLS handshake with 127.0.0.1:{port} failed: ")


async def test_a_refused_connection_is_an_error() -> None:
    port = closed_port()
    result = await run(port)
    assert result.status == "error"
    assert result.error_code == "CONNECTION_REFUSED"
    assert result.error == f"connection refused by 127.0.0.1:{port}"


async def test_a_server_that_never_completes_the_handshake_times_out() -> None:
    release = asyncio.Event()

    async def stall(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    server = await asyncio.start_server(stall, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        result = await run(port, timeout=300)
    finally:
        release.set()
        server.close()
        await server.wait_closed()
    assert result.status == "error"
    assert result.error_code == "TIMEOUT"
    assert result.error == f"no TLS handshake with 127.0.0.1:{port} within 300 ms"


async def test_tls_cert_runs_through_the_registry(serve: Serve, ca: Issuer, tmp_path: Path) -> None:
    server = await serve(
        make_leaf(tmp_path, common_name="reg.test", not_after=in_days(5), issuer=ca)
    )
    lease = make_lease(TlsCertCheck(host="127.0.0.1", port=server.port))
    result = await run_lease(lease, RUNNERS)
    assert result.status == "down"
    assert result.lease_id == lease.lease_id


@pytest.mark.parametrize(
    ("days", "expected"),
    [(-1, "down"), (0, "down"), (6, "down"), (7, "degraded"), (13, "degraded"), (14, "up")],
)
def test_expiry_status_mapping(days: int, expected: str) -> None:
    assert expiry_status(days, warn_days=14, critical_days=7) == expected


def test_days_remaining_rounds_down() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert days_remaining(now + timedelta(hours=12), now) == 0
    assert days_remaining(now - timedelta(hours=12), now) == -1
    assert days_remaining(now + timedelta(days=2, seconds=1), now) == 2
