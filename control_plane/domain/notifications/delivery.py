"""One delivery: render an alert for a channel's config and send it, every connection through
the SSRF guard, and say what happened as an ``Attempt`` (never raises for a failing receiver).

Outcomes: ``delivered``; ``retry`` (a timeout, a connection error, 408, 429, 5xx; ``retry_after``
when the receiver said when); ``dead`` (a permanent refusal: another 4xx, bad credentials, an
SMTP 5xx, a destination the guard refuses). Error excerpts are scrubbed of the config's secrets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import aiohttp

from control_plane.core.mail import MailError
from control_plane.settings import NotifySettings
from probe_agent.netguard import GuardedConnector, GuardedResolver, Policy, SsrfBlocked

from .transports.base import Alert, Config, Context, HttpRequest
from .transports.registry import DELIVERABLE, kind_of

EXCERPT = 300


@dataclass(slots=True)
class Attempt:
    outcome: str  # delivered | retry | dead
    status_code: int | None = None
    latency_ms: float = 0.0
    error: str | None = None
    retry_after: float | None = None


def retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def scrub(text: str, secrets: list[str]) -> str:
    for s in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(s, "***")
    return text[:EXCERPT]


def secret_values(cfg: Config) -> list[str]:
    from .codec import _fields

    values = [v for _, v in _fields(cfg) if v]
    url = getattr(cfg, "webhook_url", None) or getattr(cfg, "url", None)
    if url:
        # A URL's path and query carry its token.
        parts = urlsplit(url)
        values += [parts.path, parts.query]
    return values


def transient(status: int) -> bool:
    return status in (408, 425, 429) or status >= 500


class Sender:
    """One aiohttp session for all deliveries of a process, behind the SSRF guard. The hosts of
    the operator's ``base_urls`` are trusted (configured by the operator, not a tenant)."""

    def __init__(self, settings: NotifySettings, allow_private: bool) -> None:
        self.settings = settings
        self.allow_private = allow_private
        trusted = {urlsplit(u).hostname for u in settings.base_urls.values()}
        self._guard = GuardedResolver(Policy(allow_private=allow_private), lambda h: h in trusted)
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=GuardedConnector(self._guard, limit=200),
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_secs),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(
        self, cfg: Config, alert: Alert, ctx: Context, secrets: list[str] | None = None
    ) -> Attempt:
        """``secrets``: ``secret_values(cfg)`` when the caller keeps them (the delivery job does,
        per channel)."""
        info = DELIVERABLE[kind_of(cfg)]
        if secrets is None:
            secrets = secret_values(cfg)
        started = time.perf_counter()

        def took() -> float:
            return round((time.perf_counter() - started) * 1000, 3)

        if info.send is not None:
            try:
                code = await info.send(cfg, alert, ctx)
            except MailError as exc:
                outcome = "dead" if exc.permanent else "retry"
                return Attempt(outcome, exc.code, took(), scrub(str(exc), secrets))
            return Attempt("delivered", code, took())
        assert info.build is not None
        try:
            requests = info.build(cfg, alert, ctx)
        except ValueError as exc:  # the deployment cannot send this kind (a missing setting)
            return Attempt("dead", None, took(), scrub(str(exc), secrets))
        return await self.send_requests(requests, secrets, started)

    async def send_requests(
        self, requests: list[HttpRequest], secrets: list[str], started: float | None = None
    ) -> Attempt:
        """Make one delivery's requests in order through the guard (event webhooks call this
        with their own signed request); the first failure decides the outcome."""
        t0 = time.perf_counter() if started is None else started

        def took() -> float:
            return round((time.perf_counter() - t0) * 1000, 3)

        status: int | None = None
        for req in requests:
            try:
                async with self.session().request(
                    req.method, req.url, data=req.body, headers=req.headers, allow_redirects=False
                ) as resp:
                    status = resp.status
                    body = (await resp.content.read(EXCERPT)).decode("utf-8", "replace")
                    if 200 <= status < 300:
                        continue
                    error = scrub(f"HTTP {status}: {body}", secrets)
                    if transient(status):
                        after = retry_after(resp.headers.get("Retry-After"))
                        return Attempt("retry", status, took(), error, after)
                    return Attempt("dead", status, took(), error)
            except SsrfBlocked as exc:
                return Attempt("dead", None, took(), scrub(f"SSRF_BLOCKED: {exc}", secrets))
            except TimeoutError:
                return Attempt("retry", None, took(), "timeout")
            except aiohttp.ClientError as exc:
                cause = exc.__cause__ or exc.__context__
                if isinstance(cause, SsrfBlocked):
                    return Attempt("dead", None, took(), scrub(f"SSRF_BLOCKED: {cause}", secrets))
                return Attempt(
                    "retry", None, took(), scrub(f"{type(exc).__name__}: {exc}", secrets)
                )
        return Attempt("delivered", status, took())
