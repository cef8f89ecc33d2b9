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
import ssl
import time
from datetime import datetime
from typing import Any

import msgspec
from cryptography import x509
from cryptography.x509.oid import NameOID

from probe_agent.checks.base import Attempt, GuardedRunner, ms_between, utcnow
from probe_agent.checks.expiry import days_remaining, expiry_status, iso_utc
from probe_agent.checks.stream import Stream
from probe_agent.netguard import Policy, SsrfBlocked
from shared.checks import TlsCertCheck
from shared.codes import CERT_EXPIRED, CERT_EXPIRING, TIMEOUT, TLS_ERROR
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


class _HandshakeFailed(Exception):
    pass


async def peer_certificate(stream: Stream, server_name: str, policy: Policy) -> bytes:
    """The DER leaf certificate the server presents (``server_name`` '' sends no SNI)."""
    sock = await stream.open(policy)
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
        stream.tls_ms = ms_between(started, time.perf_counter())
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


class TlsCertRunner(GuardedRunner):
    kind = "tls_cert"

    async def run(self, check: TlsCertCheck, lease: Lease) -> CheckResult:
        attempt = Attempt(lease)
        stream = Stream.to(check.host, check.port)
        where = stream.where

        def timings() -> Timings:
            return stream.timings(attempt.elapsed_ms())

        def failed(message: str, code: str) -> CheckResult:
            return attempt.finish("error", timings=timings(), error=message, error_code=code)

        try:
            async with asyncio.timeout(check.timeout / 1000):
                server_name = _server_name(check, stream.host)
                der = await peer_certificate(stream, server_name, self.policy(lease))
        except SsrfBlocked as exc:
            return attempt.blocked(exc, timings=timings())
        except TimeoutError:
            return failed(f"no TLS handshake with {where} within {check.timeout} ms", TIMEOUT)
        except _HandshakeFailed as exc:
            return failed(f"TLS handshake with {where} failed: {exc}", TLS_ERROR)
        except OSError as exc:
            return failed(*stream.failure(exc))
        try:
            facts = certificate_facts(der, utcnow())
        except ValueError as exc:
            return failed(f"the certificate of {where} cannot be parsed: {exc}", TLS_ERROR)

        status = expiry_status(facts["days_remaining"], check.warn_days, check.critical_days)
        details = {**facts, "address": stream.address}
        if status == "up":
            return attempt.finish("up", timings=timings(), details=details)
        code = CERT_EXPIRED if facts["days_remaining"] < 0 else CERT_EXPIRING
        error = msgspec.json.encode(facts).decode()
        return attempt.finish(
            status, timings=timings(), error=error, error_code=code, details=details
        )
