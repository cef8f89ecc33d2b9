"""HTTP(S) checks with aiohttp: one fresh connection per check, per-phase timings.

Phases (milliseconds, summed over redirect hops, each hop on its own new connection):
``dns`` name resolution (absent for an IP literal), ``connect`` TCP handshake, ``tls`` TLS
handshake (https only), ``ttfb`` from the request headers being sent to the response headers
being read (the server's wait), ``total`` the whole check including reading the body.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import ssl
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import aiohttp

from probe_agent import USER_AGENT
from probe_agent.checks.base import (
    BODY_MISMATCH,
    CONNECTION_FAILED,
    CONNECTION_REFUSED,
    CONNECTION_RESET,
    DNS_FAILURE,
    INVALID_RESPONSE,
    RATE_LIMITED,
    TIMEOUT,
    TLS_ERROR,
    TOO_MANY_REDIRECTS,
    UNEXPECTED_STATUS,
    Attempt,
    is_refused,
    ms_between,
)
from shared.checks import (
    REDACTED,
    ExactStatus,
    ExpectedStatus,
    HttpCheck,
    RangeStatus,
    status_matches,
)
from shared.protocol import AgentStatus, CheckResult, Lease, Timings

# At most this much of a response body is read (and searched by expected_body_contains).
BODY_LIMIT = 1 << 20
# "I'm here, back off": degraded rather than down unless expected_status accepts them.
RATE_LIMIT_STATUSES = frozenset({429, 503})


class UnsupportedSpec(Exception):
    """The spec asks for something this runner cannot do; the probe cannot run it."""


class _TimedSSLObject(ssl.SSLObject):
    """Notes when its TLS handshake started (the TCP connection is up) and when it completed.

    Installed through the public ``SSLContext.sslobject_class``; it registers itself with the
    phases of the check whose task opened the connection (a context variable).
    """

    handshake_started: float | None = None
    handshake_done: float | None = None

    def do_handshake(self) -> None:
        if self.handshake_started is None:
            self.handshake_started = time.perf_counter()
            phases = _current_phases.get()
            if phases is not None:
                phases.tls_objects.append(self)
        super().do_handshake()
        self.handshake_done = time.perf_counter()


@functools.cache
def _ssl_context(verify: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.sslobject_class = _TimedSSLObject
    return ctx


def _add(total: float | None, part: float | None) -> float | None:
    if part is None:
        return total
    return round((total or 0.0) + part, 3)


@dataclass
class _Phases:
    """Collects per-phase timings from aiohttp's trace signals (and the TLS objects)."""

    dns: float | None = None
    connect: float | None = None
    tls: float | None = None
    ttfb: float | None = None
    status_code: int | None = None
    tls_objects: list[_TimedSSLObject] = field(default_factory=list)
    _hop_started: float | None = None
    _dns_started: float | None = None
    _dns_done: float | None = None
    _headers_sent: float | None = None

    def trace_config(self) -> aiohttp.TraceConfig:
        tc = aiohttp.TraceConfig()
        tc.on_connection_create_start.append(self._on_create_start)
        tc.on_dns_resolvehost_start.append(self._on_dns_start)
        tc.on_dns_resolvehost_end.append(self._on_dns_end)
        tc.on_connection_create_end.append(self._on_create_end)
        tc.on_request_headers_sent.append(self._on_headers_sent)
        tc.on_request_redirect.append(self._on_response)
        tc.on_request_end.append(self._on_response)
        return tc

    async def _on_create_start(
        self, _s: aiohttp.ClientSession, _c: SimpleNamespace, _p: Any
    ) -> None:
        self._hop_started = time.perf_counter()
        self._dns_done = None
        self.tls_objects.clear()

    async def _on_dns_start(self, _s: aiohttp.ClientSession, _c: SimpleNamespace, _p: Any) -> None:
        self._dns_started = time.perf_counter()

    async def _on_dns_end(self, _s: aiohttp.ClientSession, _c: SimpleNamespace, _p: Any) -> None:
        self._dns_done = time.perf_counter()
        self.dns = _add(self.dns, ms_between(self._dns_started, self._dns_done))

    async def _on_create_end(self, _s: aiohttp.ClientSession, _c: SimpleNamespace, _p: Any) -> None:
        self._close_hop(time.perf_counter())

    async def _on_headers_sent(
        self, _s: aiohttp.ClientSession, _c: SimpleNamespace, _p: Any
    ) -> None:
        self._headers_sent = time.perf_counter()

    async def _on_response(self, _s: aiohttp.ClientSession, _c: SimpleNamespace, p: Any) -> None:
        self.ttfb = _add(self.ttfb, ms_between(self._headers_sent, time.perf_counter()))
        self._headers_sent = None
        self.status_code = p.response.status

    def _close_hop(self, connected: float | None) -> None:
        """Account the connect (and TLS) phase of the current hop; ``connected`` None = failed."""
        if self._hop_started is None:
            return
        began = self._dns_done or self._hop_started
        tls = self.tls_objects[-1] if self.tls_objects else None
        if tls is not None:
            self.connect = _add(self.connect, ms_between(began, tls.handshake_started))
            self.tls = _add(self.tls, ms_between(tls.handshake_started, tls.handshake_done))
        elif connected is not None:
            self.connect = _add(self.connect, ms_between(began, connected))
        self._hop_started = None
        self.tls_objects.clear()

    def timings(self, total_ms: float) -> Timings:
        self._close_hop(None)  # a hop whose connection failed still tells how far it got
        return Timings(
            dns_ms=self.dns,
            connect_ms=self.connect,
            tls_ms=self.tls,
            ttfb_ms=self.ttfb,
            total_ms=total_ms,
        )


_current_phases: ContextVar[_Phases | None] = ContextVar("vigil_http_phases", default=None)


@dataclass
class _Outcome:
    status: AgentStatus
    status_code: int | None = None
    error: str | None = None
    error_code: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _set_header(headers: dict[str, str], name: str, value: str) -> None:
    for existing in [k for k in headers if k.lower() == name.lower()]:
        del headers[existing]
    headers[name] = value


def request_headers(check: HttpCheck, user_agent: str = USER_AGENT) -> dict[str, str]:
    """The headers to send: the spec's own, a default User-Agent, and its credential.

    The default User-Agent names the probing region (``vigil-agent/0.1.0 (region=eu-west)``)
    so the target's owner can tell where a request came from.
    """
    headers = {"User-Agent": user_agent}
    for name, value in check.headers.items():
        _set_header(headers, name, value)
    if check.basic_auth is not None and check.bearer_token is not None:
        raise UnsupportedSpec(
            "basic_auth and bearer_token are both set; only one Authorization header can be sent"
        )
    if isinstance(check.basic_auth, str) or check.bearer_token == REDACTED:
        raise UnsupportedSpec("the check carries a redacted credential instead of the real one")
    if check.basic_auth is not None:
        user, password = check.basic_auth
        if ":" in user:
            raise UnsupportedSpec("a basic_auth user name cannot contain ':'")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        _set_header(headers, "Authorization", f"Basic {token}")
    elif check.bearer_token is not None:
        _set_header(headers, "Authorization", f"Bearer {check.bearer_token}")
    return headers


def describe_expected(expected: ExpectedStatus) -> str:
    if isinstance(expected, ExactStatus):
        return str(expected.value)
    if isinstance(expected, RangeStatus):
        return f"{expected.value.min}-{expected.value.max}"
    return "one of " + ", ".join(str(code) for code in expected.value)


async def _read_body(resp: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the body, and whether there was more."""
    buf = bytearray()
    while len(buf) < limit:
        chunk = await resp.content.read(limit - len(buf))
        if not chunk:
            return bytes(buf), False
        buf += chunk
    return bytes(buf), not resp.content.at_eof()


def _body_text(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def judge(
    check: HttpCheck, code: int, retry_after: str | None, body: bytes, charset: str | None
) -> _Outcome:
    """Status of a check that got a response: expected status first, then rate limits."""
    if status_matches(check.expected_status, code):
        needle = check.expected_body_contains
        if needle is not None and needle not in _body_text(body, charset):
            shown = needle if len(needle) <= 100 else needle[:100] + "…"
            return _Outcome(
                "down", code, f"response body does not contain {shown!r}", BODY_MISMATCH
            )
        return _Outcome("up", code)
    if code in RATE_LIMIT_STATUSES:
        value = (retry_after or "").strip()[:100] or "none"
        return _Outcome(
            "degraded", code, f"rate-limited {code} (Retry-After: {value})", RATE_LIMITED
        )
    return _Outcome(
        "down",
        code,
        f"expected status {describe_expected(check.expected_status)}, got {code}",
        UNEXPECTED_STATUS,
    )


def classify_error(exc: Exception, check: HttpCheck) -> _Outcome | None:
    """The outcome of a failed exchange, or None when the probe itself failed."""
    if isinstance(exc, TimeoutError):
        return _Outcome("down", None, f"no complete response within {check.timeout} ms", TIMEOUT)
    if isinstance(exc, aiohttp.TooManyRedirects):
        return _Outcome(
            "down", None, f"more than {check.max_redirects} redirect(s)", TOO_MANY_REDIRECTS
        )
    if isinstance(
        exc, aiohttp.NonHttpUrlRedirectClientError | aiohttp.InvalidUrlRedirectClientError
    ):
        return _Outcome("down", None, f"invalid redirect: {exc}", INVALID_RESPONSE)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        reason = exc.os_error.strerror or str(exc.os_error)
        return _Outcome("down", None, f"DNS lookup of {exc.host} failed: {reason}", DNS_FAILURE)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert_error = exc.certificate_error
        reason = getattr(cert_error, "verify_message", None) or str(cert_error)
        return _Outcome("down", None, f"TLS certificate verification failed: {reason}", TLS_ERROR)
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return _Outcome("down", None, f"TLS error: {exc}", TLS_ERROR)
    if isinstance(exc, aiohttp.ClientConnectorError):
        where = f"{exc.host}:{exc.port}"
        if is_refused(exc.os_error):
            return _Outcome("down", None, f"connection refused by {where}", CONNECTION_REFUSED)
        reason = exc.os_error.strerror or str(exc.os_error)
        return _Outcome("down", None, f"cannot connect to {where}: {reason}", CONNECTION_FAILED)
    if isinstance(exc, aiohttp.ServerDisconnectedError | ConnectionResetError):
        return _Outcome("down", None, "the server closed the connection", CONNECTION_RESET)
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientPayloadError):
        return _Outcome("down", None, f"invalid HTTP response: {exc}", INVALID_RESPONSE)
    if isinstance(exc, aiohttp.InvalidURL):
        return None
    if isinstance(exc, aiohttp.ClientError | OSError):
        return _Outcome("down", None, f"connection failed: {exc}", CONNECTION_FAILED)
    return None


class HttpRunner:
    kind = "http"

    def __init__(self, *, body_limit: int = BODY_LIMIT, user_agent: str = USER_AGENT) -> None:
        self._body_limit = body_limit
        self._user_agent = user_agent

    async def run(self, check: HttpCheck, lease: Lease) -> CheckResult:
        tls_context = _ssl_context(check.verify_tls)  # built once per process, not timed
        attempt = Attempt(lease)
        try:
            headers = request_headers(check, f"{self._user_agent} (region={lease.region})")
        except UnsupportedSpec as exc:
            return attempt.probe_error(str(exc))
        phases = _Phases()
        token = _current_phases.set(phases)
        verdict: list[_Outcome] = []
        failure: _Outcome | None = None
        try:
            async with asyncio.timeout(check.timeout / 1000):
                await self._exchange(check, headers, tls_context, phases, verdict)
        except Exception as exc:
            # A failure after the verdict (while closing the connection) does not change it.
            if not verdict:
                failure = classify_error(exc, check)
                if failure is None:
                    return attempt.probe_error(f"cannot run the check: {exc}")
                failure.status_code = phases.status_code
        finally:
            _current_phases.reset(token)
        outcome = verdict[0] if verdict else failure
        assert outcome is not None
        return attempt.finish(
            outcome.status,
            timings=phases.timings(attempt.elapsed_ms()),
            status_code=outcome.status_code,
            error=outcome.error,
            error_code=outcome.error_code,
            details=outcome.details,
        )

    async def _exchange(
        self,
        check: HttpCheck,
        headers: dict[str, str],
        tls_context: ssl.SSLContext,
        phases: _Phases,
        verdict: list[_Outcome],
    ) -> None:
        # A new connector per check, closing its connection after use: every check pays for
        # (and measures) its own DNS, TCP and TLS, as a first-time visitor would.
        connector = aiohttp.TCPConnector(force_close=True, use_dns_cache=False)
        async with aiohttp.ClientSession(
            connector=connector,
            trace_configs=[phases.trace_config()],
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None),
        ) as session:
            async with session.request(
                check.method,
                check.url,
                headers=headers,
                data=check.body,
                allow_redirects=check.follow_redirects,
                # aiohttp fails on the Nth redirect response; the spec counts redirects followed.
                max_redirects=check.max_redirects + 1,
                ssl=tls_context,
            ) as resp:
                body, truncated = await _read_body(resp, self._body_limit)
                outcome = judge(
                    check, resp.status, resp.headers.get("Retry-After"), body, resp.charset
                )
                if resp.history:
                    outcome.details["redirects"] = len(resp.history)
                    outcome.details["final_url"] = str(resp.url)
                if truncated and check.expected_body_contains is not None:
                    outcome.details["body_truncated_at"] = self._body_limit
                verdict.append(outcome)
