"""HTTP(S) checks with aiohttp: one fresh connection per check, per-phase timings.

Phases (milliseconds, summed over redirect hops, each hop on its own new connection):
``dns`` name resolution (absent for an IP literal), ``connect`` TCP handshake, ``tls`` TLS
handshake (https only), ``ttfb`` from the request headers being sent to the response headers
being read (the server's wait), ``total`` the whole check including reading the body.

All checks of a runner share one ``ClientSession`` whose connector never reuses a connection
and never caches a name. The phases are timed by hooks on that session (a resolver, the
connector's ``connect`` and the response's ``start``) and the TLS objects, which find the
phases of their check in a context variable; aiohttp's trace signals would do the same for
several times the CPU.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import socket
import ssl
import time
import weakref
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_reqrep import ClientRequest
from aiohttp.connector import Connection
from aiohttp.resolver import DefaultResolver
from aiohttp.tracing import Trace

from probe_agent import USER_AGENT
from probe_agent.checks import assertions
from probe_agent.checks.base import Attempt, is_refused
from probe_agent.deadlines import deadline
from probe_agent.netguard import SECURE_DEFAULT, Policy, SsrfBlocked, judge_literal
from shared.checks import (
    REDACTED,
    ExactStatus,
    ExpectedStatus,
    HttpCheck,
    RangeStatus,
    status_matches,
)
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
    UNEXPECTED_STATUS,
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


def _plus(total: float | None, start: float | None, end: float | None) -> float | None:
    """``total`` plus the seconds from ``start`` to ``end``; unchanged if either is missing."""
    if start is None or end is None:
        return total
    return (total or 0.0) + max(0.0, end - start)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


class _Phases:
    """Per-phase timings of one check in seconds, fed by the hooks below and the TLS objects."""

    __slots__ = (
        "connect",
        "dns",
        "dns_done",
        "hop_started",
        "status_code",
        "tls",
        "tls_objects",
        "ttfb",
    )

    def __init__(self) -> None:
        self.dns: float | None = None
        self.connect: float | None = None
        self.tls: float | None = None
        self.ttfb: float | None = None
        self.status_code: int | None = None
        self.tls_objects: list[_TimedSSLObject] = []
        self.hop_started: float | None = None
        self.dns_done: float | None = None

    def open_hop(self, now: float) -> None:
        self.hop_started = now
        self.dns_done = None
        self.tls_objects.clear()

    def close_hop(self, connected: float | None) -> None:
        """Account the connect (and TLS) phase of the current hop; ``connected`` None = failed."""
        if self.hop_started is None:
            return
        began = self.dns_done or self.hop_started
        tls = self.tls_objects[-1] if self.tls_objects else None
        if tls is not None:
            self.connect = _plus(self.connect, began, tls.handshake_started)
            self.tls = _plus(self.tls, tls.handshake_started, tls.handshake_done)
        else:
            self.connect = _plus(self.connect, began, connected)
        self.hop_started = None
        self.tls_objects.clear()

    def timings(self, total_ms: float) -> Timings:
        self.close_hop(None)  # a hop whose connection failed still tells how far it got
        return Timings(
            dns_ms=_ms(self.dns),
            connect_ms=_ms(self.connect),
            tls_ms=_ms(self.tls),
            ttfb_ms=_ms(self.ttfb),
            total_ms=total_ms,
        )


_current_phases: ContextVar[_Phases | None] = ContextVar("vigil_http_phases", default=None)
# The SSRF policy of the check whose task runs the hooks; outside a check, the secure default.
_current_policy: ContextVar[Policy] = ContextVar("vigil_http_policy", default=SECURE_DEFAULT)


# Where the phases are timed. Each hook reads the phases of the check whose task runs it (the
# context variable above) and does nothing outside a check.


class _TimedResolver(AbstractResolver):
    """Times name resolution (aiohttp asks the resolver only for names, never IP literals) and
    hands the connector only addresses the SSRF guard let through: if any address of the name
    is blocked, the whole name is (``SsrfBlocked``), and nothing is connected to."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        started = time.perf_counter()
        addresses = await self._inner.resolve(host, port, family)
        phases = _current_phases.get()
        if phases is not None:
            phases.dns_done = time.perf_counter()
            phases.dns = _plus(phases.dns, started, phases.dns_done)
        _current_policy.get().check(host, (a["host"] for a in addresses), port)
        return addresses

    async def close(self) -> None:
        await self._inner.close()


class _TimedConnector(aiohttp.TCPConnector):
    """Times each hop's connection: resolve (through the resolver), TCP connect, TLS.

    aiohttp connects to an IP-literal host without asking the resolver, so the SSRF guard
    judges a literal here, before anything is opened; names are judged by the resolver.
    """

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's signature)
    ) -> Connection:
        judge_literal(_current_policy.get(), req.url.raw_host, req.port or 0)
        phases = _current_phases.get()
        if phases is not None:
            phases.open_hop(time.perf_counter())
        conn = await super().connect(req, traces, timeout)
        if phases is not None:
            phases.close_hop(time.perf_counter())
        return conn


class _TimedResponse(aiohttp.ClientResponse):
    """Times the wait for each response's headers: aiohttp calls ``start`` (which reads them)
    right after sending the request. Should that change, the tests of ``ttfb_ms`` fail."""

    async def start(self, connection: Connection) -> aiohttp.ClientResponse:
        sent = time.perf_counter()
        response = await super().start(connection)
        phases = _current_phases.get()
        if phases is not None:
            phases.ttfb = _plus(phases.ttfb, sent, time.perf_counter())
            phases.status_code = self.status
        return response


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
    if (
        isinstance(check.basic_auth, str)
        or check.bearer_token == REDACTED
        or REDACTED in check.headers.values()
    ):
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
    if isinstance(exc, SsrfBlocked):
        return _Outcome("error", None, str(exc), SSRF_BLOCKED, exc.details())
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


class _SessionSlot:
    """The runner's session and the loop it belongs to (kept apart so a finalizer can reach it)."""

    __slots__ = ("loop", "session")

    def __init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def forget(self) -> None:
        """Drop the session without closing it: it holds no connection (``force_close``)."""
        if self.session is not None and not self.session.closed:
            self.session.detach()
        self.session = self.loop = None


def _open_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=_TimedConnector(
            force_close=True,
            use_dns_cache=False,
            resolver=_TimedResolver(),
            # The executor bounds how many checks run at once; the connector must not queue them.
            limit=0,
            limit_per_host=0,
        ),
        response_class=_TimedResponse,
        cookie_jar=aiohttp.DummyCookieJar(),
        # No proxy from the environment: the SSRF guard judges the target, not a proxy.
        trust_env=False,
        timeout=aiohttp.ClientTimeout(total=None),  # each check has its own budget
    )


class HttpRunner:
    """Runs HTTP(S) checks through one long-lived ``ClientSession`` (per event loop).

    Its connector never reuses a connection (``force_close``) and never caches a name
    (``use_dns_cache=False``): every check still resolves, connects and handshakes afresh, as a
    first-time visitor would, and times each phase for itself. Sharing the session only spares
    each check the cost of building a session and connector of its own.

    ``close()`` (or ``async with``) closes the session; a runner used again opens a new one. A
    runner that is dropped unclosed, or still open at exit, lets go of its session quietly.
    """

    kind = "http"

    def __init__(
        self,
        *,
        body_limit: int = BODY_LIMIT,
        user_agent: str = USER_AGENT,
        ssrf_exempt: frozenset[tuple[str, int]] = frozenset(),
    ) -> None:
        self._body_limit = body_limit
        self._user_agent = user_agent
        # Listeners (address, port) the SSRF guard lets through regardless (see Policy).
        self._ssrf_exempt = ssrf_exempt
        self._slot = _SessionSlot()
        weakref.finalize(self, self._slot.forget)

    async def __aenter__(self) -> HttpRunner:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        session = self._slot.session
        self._slot.session = self._slot.loop = None
        if session is not None and not session.closed:
            await session.close()

    def _session(self) -> aiohttp.ClientSession:
        slot, loop = self._slot, asyncio.get_running_loop()
        if slot.session is None or slot.loop is not loop or slot.session.closed:
            # First use, or the runner moved to another event loop (as in tests): a session
            # belongs to the loop it was opened on.
            slot.forget()
            slot.session, slot.loop = _open_session(), loop
        return slot.session

    async def run(self, check: HttpCheck, lease: Lease) -> CheckResult:
        attempt = Attempt(lease)
        try:
            headers = request_headers(check, f"{self._user_agent} (region={lease.region})")
        except UnsupportedSpec as exc:
            return attempt.probe_error(str(exc))
        session = self._session()
        tls_context = _ssl_context(check.verify_tls)  # built once per process, not timed
        phases = _Phases()
        token = _current_phases.set(phases)
        policy_token = _current_policy.set(Policy.for_lease(lease, self._ssrf_exempt))
        outcome: _Outcome | None = None
        try:
            with deadline(check.timeout / 1000):
                async with session.request(
                    check.method,
                    check.url,
                    headers=headers,
                    data=check.body,
                    allow_redirects=check.follow_redirects,
                    # aiohttp fails on the Nth redirect response; the spec counts those followed.
                    max_redirects=check.max_redirects + 1,
                    ssl=tls_context,
                ) as resp:
                    outcome = await self._judge_response(check, resp, attempt)
        except Exception as exc:
            # A failure after the verdict (while closing the connection) does not change it.
            if outcome is None:
                outcome = classify_error(exc, check)
                if outcome is None:
                    return attempt.probe_error(f"cannot run the check: {exc}")
                outcome.status_code = phases.status_code
        finally:
            _current_policy.reset(policy_token)
            _current_phases.reset(token)
        return attempt.finish(
            outcome.status,
            timings=phases.timings(attempt.elapsed_ms()),
            status_code=outcome.status_code,
            error=outcome.error,
            error_code=outcome.error_code,
            details=outcome.details,
        )

    async def _judge_response(
        self, check: HttpCheck, resp: aiohttp.ClientResponse, attempt: Attempt
    ) -> _Outcome:
        body, truncated = await _read_body(resp, self._body_limit)
        # The response time assertions see: up to the response (its body) being read.
        elapsed_ms = attempt.elapsed_ms()
        reads_body = check.expected_body_contains is not None or assertions.needs_body(
            check.assertions
        )
        charset = resp.charset if reads_body else None
        outcome = judge(check, resp.status, resp.headers.get("Retry-After"), body, charset)
        if resp.history:
            outcome.details["redirects"] = len(resp.history)
            outcome.details["final_url"] = str(resp.url)
        if truncated and reads_body:
            outcome.details["body_truncated_at"] = self._body_limit
        if check.assertions:
            _assert(check, resp, outcome, elapsed_ms, body, charset, truncated)
        return outcome


def _assert(
    check: HttpCheck,
    resp: aiohttp.ClientResponse,
    outcome: _Outcome,
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
        text=_body_text(body, charset) if assertions.needs_body(check.assertions) else None,
        truncated_at=len(body) if truncated else None,
    )
    evaluated = assertions.evaluate(check.assertions, response)
    outcome.details["assertions"] = [e.entry for e in evaluated]
    failed = next((e for e in evaluated if not e.passed), None)
    if failed is not None and outcome.status == "up":
        outcome.status = "down"
        outcome.error = assertions.failure_message(failed)
        outcome.error_code = ASSERTION_FAILED
