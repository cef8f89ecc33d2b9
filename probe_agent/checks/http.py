"""HTTP(S) checks with aiohttp: one fresh connection per check, per-phase timings.

Phases (milliseconds, summed over redirect hops, each hop on its own new connection):
``dns`` name resolution (absent for an IP literal), ``connect`` TCP handshake, ``tls`` TLS
handshake (https only), ``ttfb`` from the request headers being sent to the response headers
being read (the server's wait), ``total`` the whole check including reading the body.

This module builds the request and runs it; the session that times the phases and guards every
hop is ``http_session``, the verdict on what came back ``http_verdict``.
"""

from __future__ import annotations

import base64
import weakref

import aiohttp

from probe_agent import USER_AGENT
from probe_agent.checks import assertions
from probe_agent.checks.base import Attempt, GuardedRunner
from probe_agent.checks.http_session import Phases, SessionSlot, checked, checking, ssl_context
from probe_agent.checks.http_verdict import (
    RATE_LIMIT_STATUSES,
    Outcome,
    apply_assertions,
    classify_error,
    judge,
    read_body,
)
from probe_agent.deadlines import deadline
from shared.checks import REDACTED, HttpCheck
from shared.protocol import CheckResult, Lease

# At most this much of a response body is read (and searched by expected_body_contains).
BODY_LIMIT = 1 << 20


class UnsupportedSpec(Exception):
    """The spec asks for something this runner cannot do; the probe cannot run it."""


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


def only_user_agent(check: HttpCheck) -> bool:
    """Whether the User-Agent is all ``request_headers`` would send (no header of the spec's
    own, no credential): the usual check, whose User-Agent the session sends by default."""
    return not check.headers and check.basic_auth is None and check.bearer_token is None


class HttpRunner(GuardedRunner):
    """Runs HTTP(S) checks through one long-lived ``ClientSession`` (per event loop).

    Its connector never reuses a connection (``force_close``) and never caches a name
    (``use_dns_cache=False``): every check still resolves, connects and handshakes afresh, as a
    first-time visitor would, and times each phase for itself. Sharing the session only spares
    each check the cost of building a session and connector of its own.

    ``close()`` (or ``async with``) closes the session; a runner used again opens a new one. A
    runner that is dropped unclosed, or still open at exit, lets go of its session quietly.
    """

    kind = "http"
    # Every await of a check runs under ``deadline(check.timeout)`` (see ``run_lease``).
    bounded = True

    def __init__(
        self,
        *,
        body_limit: int = BODY_LIMIT,
        user_agent: str = USER_AGENT,
        ssrf_exempt: frozenset[tuple[str, int]] = frozenset(),
    ) -> None:
        super().__init__(ssrf_exempt=ssrf_exempt)
        self._body_limit = body_limit
        self._user_agent = user_agent
        self._slot = SessionSlot()
        # The default User-Agent per region (an agent probes for one region, or a few).
        self._region_agents: dict[str, str] = {}
        weakref.finalize(self, self._slot.forget)

    def _region_agent(self, region: str) -> str:
        user_agent = f"{self._user_agent} (region={region})"
        if len(self._region_agents) < 64:
            self._region_agents[region] = user_agent
        return user_agent

    async def __aenter__(self) -> HttpRunner:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._slot.close()

    async def run(self, check: HttpCheck, lease: Lease) -> CheckResult:
        attempt = Attempt(lease)
        user_agent = self._region_agents.get(lease.region)
        if user_agent is None:
            user_agent = self._region_agent(lease.region)
        session = self._slot.get(user_agent)
        headers: dict[str, str] | None = None
        # A check whose only header is the default User-Agent leaves it to the session, which
        # sends it by default: building and merging a header dict per request costs aiohttp
        # about as much CPU as the rest of the runner's own per-check work.
        if not only_user_agent(check) or self._slot.user_agent != user_agent:
            try:
                headers = request_headers(check, user_agent)
            except UnsupportedSpec as exc:
                return attempt.probe_error(str(exc))
        tls_context = ssl_context(check.verify_tls)  # built once per process, not timed
        phases = Phases(self.policy(lease))
        outcome: Outcome | None = None
        token = checking(phases)
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
            checked(token)
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
    ) -> Outcome:
        body, truncated = await read_body(resp, self._body_limit)
        # The response time assertions see: up to the response (its body) being read.
        elapsed_ms = attempt.elapsed_ms() if check.assertions else 0.0
        reads_body = check.expected_body_contains is not None or assertions.needs_body(
            check.assertions
        )
        charset = resp.charset if reads_body else None
        code = resp.status
        # Only a rate-limit verdict reads Retry-After (``judge``): no header lookup otherwise.
        retry_after = resp.headers.get("Retry-After") if code in RATE_LIMIT_STATUSES else None
        outcome = judge(check, code, retry_after, body, charset)
        if resp.history:
            outcome.details["redirects"] = len(resp.history)
            outcome.details["final_url"] = str(resp.url)
        if truncated and reads_body:
            outcome.details["body_truncated_at"] = self._body_limit
        if check.assertions:
            apply_assertions(check, resp, outcome, elapsed_ms, body, charset, truncated)
        return outcome
