"""The HTTP runner's session: one aiohttp ``ClientSession`` for all its checks, whose hooks time
each phase of a check and put every hop through the SSRF guard.

The connector never reuses a connection and never caches a name. The phases are timed by hooks
on that session (a resolver, the connector's ``connect`` and the response's ``start``) and the
TLS objects, which find the phases of their check in a context variable; aiohttp's trace
signals would do the same for several times the CPU. The SSRF guard (``GuardedResolver``) finds
the policy of its check the same way. ``checking`` sets both for the check the current task runs.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
import time
from contextvars import ContextVar, Token

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_reqrep import ClientRequest
from aiohttp.connector import Connection
from aiohttp.tracing import Trace

from probe_agent.dnscache import CachedResolver
from probe_agent.millis import to_ms
from probe_agent.netguard import SECURE_DEFAULT, GuardedConnector, GuardedResolver, Policy
from shared.protocol import Timings


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
def ssl_context(verify: bool) -> ssl.SSLContext:
    """The TLS context of a check (built once per process, so never part of its timings)."""
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
    return None if seconds is None else to_ms(seconds)


class Phases:
    """One check's context for the session's hooks: the SSRF policy its hops are judged by, and
    its per-phase timings in seconds, fed by the hooks below and the TLS objects."""

    __slots__ = (
        "connect",
        "dns",
        "dns_done",
        "hop_started",
        "policy",
        "status_code",
        "tls",
        "tls_objects",
        "ttfb",
    )

    def __init__(self, policy: Policy = SECURE_DEFAULT) -> None:
        self.policy = policy
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


# The check the current task runs (its phases and SSRF policy); None outside a check.
_current_phases: ContextVar[Phases | None] = ContextVar("vigil_http_phases", default=None)


def _current_policy() -> Policy:
    """The SSRF policy of the check whose task runs the hooks; outside a check, the secure
    default."""
    phases = _current_phases.get()
    return SECURE_DEFAULT if phases is None else phases.policy


def checking(phases: Phases) -> Token[Phases | None]:
    """From now on the current task's requests are timed into ``phases`` and judged by its
    ``policy``, until ``checked(token)``. (One context variable and no generator-based context
    manager: this runs for every check.)"""
    return _current_phases.set(phases)


def checked(token: Token[Phases | None]) -> None:
    _current_phases.reset(token)


# Where the phases are timed. Each hook reads the phases of the check whose task runs it (the
# context variable above) and does nothing outside a check.


class _TimedResolver(AbstractResolver):
    """Times name resolution (aiohttp asks the resolver only for names, never IP literals); the
    guard's resolver wrapped around it judges what it found."""

    def __init__(self) -> None:
        self._inner: AbstractResolver = CachedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        started = time.perf_counter()
        addresses = await self._inner.resolve(host, port, family)
        phases = _current_phases.get()
        if phases is not None:
            phases.dns_done = time.perf_counter()
            phases.dns = _plus(phases.dns, started, phases.dns_done)
        return addresses

    async def close(self) -> None:
        await self._inner.close()


class _TimedConnector(GuardedConnector):
    """Times each hop's connection: resolve (through the resolver), TCP connect, TLS. The guard
    it extends judges each hop before anything opens; a refused hop adds no connect time."""

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's signature)
    ) -> Connection:
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


def _open_session(user_agent: str | None = None) -> aiohttp.ClientSession:
    session = aiohttp.ClientSession(
        # Sent unless a request's own headers name another (``request_headers``).
        headers=None if user_agent is None else {"User-Agent": user_agent},
        connector=_TimedConnector(
            GuardedResolver(_current_policy, lookup=_TimedResolver()),
            force_close=True,
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
    # One attempt per check: aiohttp sends an idempotent request again, on a new connection,
    # when the first is reset or closed before the answer (RFC 9112 9.3.1 lets a client retry),
    # and ``force_close`` does not stop it. A target that fails every other request must not
    # look up. No public option turns it off; aiohttp's own test client sets this attribute the
    # same way, and tests/probe_agent/test_http_attempts.py fails if it stops working.
    session._retry_connection = False
    return session


class SessionSlot:
    """The runner's session and the loop it belongs to (kept apart so a finalizer can reach it),
    and the User-Agent the session sends by default."""

    __slots__ = ("loop", "session", "user_agent")

    def __init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.user_agent: str | None = None

    def get(self, user_agent: str | None = None) -> aiohttp.ClientSession:
        """The session of the running loop, opened on first use (sending ``user_agent`` by
        default; a session already open keeps the one it was opened with)."""
        loop = asyncio.get_running_loop()
        if self.session is None or self.loop is not loop or self.session.closed:
            # First use, or the runner moved to another event loop (as in tests): a session
            # belongs to the loop it was opened on.
            self.forget()
            self.session, self.loop = _open_session(user_agent), loop
            self.user_agent = user_agent
        return self.session

    def forget(self) -> None:
        """Drop the session without closing it: it holds no connection (``force_close``)."""
        if self.session is not None and not self.session.closed:
            self.session.detach()
        self.session = self.loop = None
        self.user_agent = None

    async def close(self) -> None:
        session = self.session
        self.session = self.loop = None
        self.user_agent = None
        if session is not None and not session.closed:
            await session.close()
