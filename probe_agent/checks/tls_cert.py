"""TLS certificate expiry: handshake, read the leaf certificate's notAfter, map days left.

The handshake accepts any chain (no verification, no hostname check) so that expired and
self-signed certificates can still be inspected. Expired or fewer than ``critical_days`` left
is down, fewer than ``warn_days`` degraded, else up; a non-up result carries the certificate
facts as a JSON document in ``error`` (and in ``details``). A failed handshake or connection is
status ``error`` with the underlying message. Timings: dns, connect, tls, total.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from cryptography import x509
from cryptography.x509.oid import NameOID

from probe_agent.checks.base import Attempt, is_refused, ms_between, utcnow
from probe_agent.checks.expiry import days_remaining, expiry_status, iso_utc
from probe_agent.netguard import Policy, SsrfBlocked, resolve_stream
from shared.checks import TlsCertCheck
from shared.codes import (
    CERT_EXPIRED,
    CERT_EXPIRING,
    CONNECTION_FAILED,
    CONNECTION_REFUSED,
    DNS_FAILURE,
    TIMEOUT,
    TLS_ERROR,
)
from shared.protocol import CheckResult, Lease, Timings


@functools.cache
def inspecting_context() -> ssl.SSLContext:
    """A client context that completes the handshake with whatever chain the server presents."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _common_name(name: x509.Name) -> str | None:
    attributes = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attributes:
        return None
    value = attributes[0].value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def certificate_facts(der: bytes, now: datetime) -> dict[str, Any]:
    """days_remaining, not_after, subject_common_name, issuer_common_name of a DER cert."""
    cert = x509.load_der_x509_certificate(der)
    not_after = cert.not_valid_after_utc
    return {
        "days_remaining": days_remaining(not_after, now),
        "not_after": iso_utc(not_after),
        "subject_common_name": _common_name(cert.subject),
        "issuer_common_name": _common_name(cert.issuer),
    }


@dataclass
class _Phases:
    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    address: str | None = None


class _HandshakeFailed(Exception):
    pass


async def _connect(host: str, port: int, phases: _Phases, policy: Policy) -> socket.socket:
    """A TCP connection to one of ``host``'s addresses, all validated by the SSRF guard."""
    loop = asyncio.get_running_loop()
    addresses, phases.dns_ms = await resolve_stream(host, port, policy)
    started = time.perf_counter()
    last: OSError = OSError("no address to connect to")
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, sockaddr)
        except BaseException as exc:
            sock.close()
            if not isinstance(exc, OSError):
                raise
            last = exc
            continue
        phases.connect_ms = ms_between(started, time.perf_counter())
        phases.address = str(sockaddr[0])
        return sock
    raise last


async def peer_certificate(
    host: str, port: int, server_name: str, phases: _Phases, policy: Policy
) -> bytes:
    """The DER leaf certificate the server presents (``server_name`` '' sends no SNI)."""
    sock = await _connect(host, port, phases, policy)
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    try:
        transport, _ = await loop.create_connection(
            asyncio.Protocol, sock=sock, ssl=inspecting_context(), server_hostname=server_name
        )
    except (ssl.SSLError, ConnectionError) as exc:
        sock.close()
        raise _HandshakeFailed(str(exc) or type(exc).__name__) from exc
    except BaseException:
        sock.close()
        raise
    try:
        phases.tls_ms = ms_between(started, time.perf_counter())
        ssl_object: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    finally:
        transport.abort()
    if not der:
        raise _HandshakeFailed("the server presented no certificate")
    return der


def _server_name(check: TlsCertCheck, host: str) -> str:
    if check.server_name is not None:
        return check.server_name.rstrip(".")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host.rstrip(".")
    return ""  # no SNI for an IP literal


class TlsCertRunner:
    kind = "tls_cert"

    def __init__(self, *, ssrf_exempt: frozenset[tuple[str, int]] = frozenset()) -> None:
        # Listeners (address, port) the SSRF guard lets through regardless (see Policy).
        self._ssrf_exempt = ssrf_exempt

    async def run(self, check: TlsCertCheck, lease: Lease) -> CheckResult:
        attempt = Attempt(lease)
        host = check.host.strip().strip("[]")
        where = f"{host}:{check.port}"
        phases = _Phases()

        def timings() -> Timings:
            return Timings(
                dns_ms=phases.dns_ms,
                connect_ms=phases.connect_ms,
                tls_ms=phases.tls_ms,
                total_ms=attempt.elapsed_ms(),
            )

        def failed(message: str, code: str) -> CheckResult:
            return attempt.finish("error", timings=timings(), error=message, error_code=code)

        policy = Policy.for_lease(lease, self._ssrf_exempt)
        try:
            async with asyncio.timeout(check.timeout / 1000):
                der = await peer_certificate(
                    host, check.port, _server_name(check, host), phases, policy
                )
        except SsrfBlocked as exc:
            phases.dns_ms = exc.dns_ms
            return attempt.blocked(exc, timings=timings())
        except TimeoutError:
            return failed(f"no TLS handshake with {where} within {check.timeout} ms", TIMEOUT)
        except socket.gaierror as exc:
            return failed(f"DNS lookup of {host} failed: {exc.strerror or exc}", DNS_FAILURE)
        except _HandshakeFailed as exc:
            return failed(f"TLS handshake with {where} failed: {exc}", TLS_ERROR)
        except OSError as exc:
            if is_refused(exc):
                return failed(f"connection refused by {where}", CONNECTION_REFUSED)
            return failed(f"cannot connect to {where}: {exc.strerror or exc}", CONNECTION_FAILED)
        try:
            facts = certificate_facts(der, utcnow())
        except ValueError as exc:
            return failed(f"the certificate of {where} cannot be parsed: {exc}", TLS_ERROR)

        status = expiry_status(facts["days_remaining"], check.warn_days, check.critical_days)
        details = {**facts, "address": phases.address}
        if status == "up":
            return attempt.finish("up", timings=timings(), details=details)
        code = CERT_EXPIRED if facts["days_remaining"] < 0 else CERT_EXPIRING
        error = msgspec.json.encode(facts).decode()
        return attempt.finish(
            status, timings=timings(), error=error, error_code=code, details=details
        )
