"""What an HTTP check's exchange comes to: the verdict on a response (expected status, rate
limits, body text, assertions) or the classification of a failed exchange.

Pure functions of the spec and what came back; the runner (``probe_agent.checks.http``) does
the I/O and turns the ``Outcome`` into a result.
"""

from __future__ import annotations

import errno
import ssl
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from probe_agent.checks import assertions
from probe_agent.checks.base import is_refused
from probe_agent.netguard import SsrfBlocked
from shared.checks import ExactStatus, ExpectedStatus, HttpCheck, RangeStatus, status_matches
from shared.codes import (
    ASSERTION_FAILED,
    BODY_MISMATCH,
    CONNECTION_FAILED,
    CONNECTION_REFUSED,
    CONNECTION_RESET,
    DNS_FAILURE,
    INVALID_RESPONSE,
    RATE_LIMITED,
    SSRF_BLOCKED,
    TIMEOUT,
    TLS_ERROR,
    TOO_MANY_REDIRECTS,
    UNAVAILABLE,
    UNEXPECTED_STATUS,
)
from shared.protocol import AgentStatus

_RESET_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE})
# Degraded rather than down unless expected_status accepts them. With a Retry-After the service
# says "I'm here, back off" (RATE_LIMITED); without one it is not serving us and gives no sign of
# when it will (UNAVAILABLE), which the control plane counts toward a degraded incident.
RATE_LIMIT_STATUSES = frozenset({429, 503})


@dataclass
class Outcome:
    status: AgentStatus
    status_code: int | None = None
    error: str | None = None
    error_code: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def describe_expected(expected: ExpectedStatus) -> str:
    if isinstance(expected, ExactStatus):
        return str(expected.value)
    if isinstance(expected, RangeStatus):
        return f"{expected.value.min}-{expected.value.max}"
    return "one of " + ", ".join(str(code) for code in expected.value)


async def read_body(resp: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the body, and whether there was more."""
    content = resp.content
    first = await content.read(limit)
    if not first or content.at_eof():  # the whole (small) body came at once: the common case
        return first, False
    buf = bytearray(first)
    while len(buf) < limit:
        chunk = await content.read(limit - len(buf))
        if not chunk:
            return bytes(buf), False
        buf += chunk
    return bytes(buf), not content.at_eof()


def body_text(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def judge(
    check: HttpCheck, code: int, retry_after: str | None, body: bytes, charset: str | None
) -> Outcome:
    """Status of a check that got a response: expected status first, then 429/503."""
    if status_matches(check.expected_status, code):
        needle = check.expected_body_contains
        if needle is not None and needle not in body_text(body, charset):
            shown = needle if len(needle) <= 100 else needle[:100] + "…"
            return Outcome("down", code, f"response body does not contain {shown!r}", BODY_MISMATCH)
        return Outcome("up", code)
    if code in RATE_LIMIT_STATUSES:
        value = (retry_after or "").strip()[:100]
        if not value:
            return Outcome("degraded", code, f"unavailable {code} (no Retry-After)", UNAVAILABLE)
        return Outcome(
            "degraded", code, f"rate-limited {code} (Retry-After: {value})", RATE_LIMITED
        )
    return Outcome(
        "down",
        code,
        f"expected status {describe_expected(check.expected_status)}, got {code}",
        UNEXPECTED_STATUS,
    )


def apply_assertions(
    check: HttpCheck,
    resp: aiohttp.ClientResponse,
    outcome: Outcome,
    elapsed_ms: float,
    body: bytes,
    charset: str | None,
    truncated: bool,
) -> None:
    """Evaluate the assertions into ``details["assertions"]``; a failure turns an up outcome
    down (a status or rate-limit verdict already reached stands, with the assertions reported)."""
    response = assertions.Response(
        status=resp.status,
        elapsed_ms=elapsed_ms,
        header=lambda name: resp.headers.getall(name, ()),
        text=body_text(body, charset) if assertions.needs_body(check.assertions) else None,
        truncated_at=len(body) if truncated else None,
    )
    evaluated = assertions.evaluate(check.assertions, response)
    outcome.details["assertions"] = [e.entry for e in evaluated]
    failed = next((e for e in evaluated if not e.passed), None)
    if failed is not None and outcome.status == "up":
        outcome.status = "down"
        outcome.error = assertions.failure_message(failed)
        outcome.error_code = ASSERTION_FAILED


def classify_error(exc: Exception, check: HttpCheck) -> Outcome | None:
    """The outcome of a failed exchange, or None when the probe itself failed."""
    if isinstance(exc, SsrfBlocked):
        return Outcome("error", None, str(exc), SSRF_BLOCKED, exc.details())
    if isinstance(exc, TimeoutError):
        return Outcome("down", None, f"no complete response within {check.timeout} ms", TIMEOUT)
    if isinstance(exc, aiohttp.TooManyRedirects):
        return Outcome(
            "down", None, f"more than {check.max_redirects} redirect(s)", TOO_MANY_REDIRECTS
        )
    if isinstance(
        exc, aiohttp.NonHttpUrlRedirectClientError | aiohttp.InvalidUrlRedirectClientError
    ):
        return Outcome("down", None, f"invalid redirect: {exc}", INVALID_RESPONSE)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        reason = exc.os_error.strerror or str(exc.os_error)
        return Outcome("down", None, f"DNS lookup of {exc.host} failed: {reason}", DNS_FAILURE)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert_error = exc.certificate_error
        reason = getattr(cert_error, "verify_message", None) or str(cert_error)
        return Outcome("down", None, f"TLS certificate verification failed: {reason}", TLS_ERROR)
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return Outcome("down", None, f"TLS error: {exc}", TLS_ERROR)
    if isinstance(exc, aiohttp.ClientConnectorError):
        where = f"{exc.host}:{exc.port}"
        if is_refused(exc.os_error):
            return Outcome("down", None, f"connection refused by {where}", CONNECTION_REFUSED)
        reason = exc.os_error.strerror or str(exc.os_error)
        return Outcome("down", None, f"cannot connect to {where}: {reason}", CONNECTION_FAILED)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return Outcome("down", None, "the server closed the connection", CONNECTION_RESET)
    if isinstance(exc, ConnectionResetError | BrokenPipeError) or (
        isinstance(exc, OSError) and exc.errno in _RESET_ERRNOS
    ):
        # aiohttp wraps a reset in ``ClientOSError``, which only its errno tells apart.
        return Outcome("down", None, "the server reset the connection", CONNECTION_RESET)
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientPayloadError):
        return Outcome("down", None, f"invalid HTTP response: {exc}", INVALID_RESPONSE)
    if isinstance(exc, aiohttp.InvalidURL):
        return None
    if isinstance(exc, aiohttp.ClientError | OSError):
        return Outcome("down", None, f"connection failed: {exc}", CONNECTION_FAILED)
    return None
