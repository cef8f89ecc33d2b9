"""Domain registration expiry over RDAP.

The IANA bootstrap registry (RFC 9224) names the RDAP server of each TLD; it is fetched lazily on
the first lookup and kept for ``BOOTSTRAP_TTL_S`` in the agent process. The check fetches
``{base}domain/{domain}``, reads the ``expiration`` event and the registrar's name, and maps the
days left as tls_cert does: expired or fewer than ``critical_days`` down, fewer than
``warn_days`` degraded, else up. A non-up result carries domain, days_remaining,
expiration_date and (when present) registrar as a JSON document in ``error`` (and in
``details``). When the registry cannot be asked or does not say, the status is ``error``.

Every connection goes through the SSRF guard (``probe_agent.netguard``). The bootstrap's host and
the RDAP servers it lists are the operator's choice (an air-gapped site may mirror them on a
private address) and are trusted; anything else, such as a registry's redirect, is judged like a
tenant's target, so a registry cannot point the agent at a private address.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import msgspec
import yarl

from probe_agent import USER_AGENT
from probe_agent.checks.base import Attempt, utcnow
from probe_agent.checks.expiry import days_remaining, expiry_status, iso_utc
from probe_agent.netguard import GuardedConnector, GuardedResolver, Policy, SsrfBlocked
from shared.checks import DomainExpiryCheck
from shared.codes import (
    DOMAIN_EXPIRED,
    DOMAIN_EXPIRING,
    DOMAIN_NOT_FOUND,
    RATE_LIMITED,
    RDAP_BOOTSTRAP_FAILED,
    RDAP_ERROR,
    RDAP_NO_EXPIRATION,
    RDAP_UNSUPPORTED_TLD,
    TIMEOUT,
)
from shared.protocol import CheckResult, Lease

IANA_RDAP_BOOTSTRAP = "https://data.iana.org/rdap/dns.json"
BOOTSTRAP_TTL_S = 24 * 3600
BOOTSTRAP_LIMIT = 4 << 20
RESPONSE_LIMIT = 1 << 20
MAX_REDIRECTS = 5


class RdapError(Exception):
    def __init__(self, message: str, code: str = RDAP_ERROR, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


async def _get_json(session: aiohttp.ClientSession, url: str, limit: int) -> Any:
    """GET a JSON document; raises ``RdapError`` (status set for a non-2xx answer)."""
    try:
        async with session.get(url, max_redirects=MAX_REDIRECTS) as resp:
            if resp.status == 429:
                retry = resp.headers.get("Retry-After")
                hint = f" (Retry-After: {retry})" if retry else ""
                raise RdapError(f"{url} rate-limited us{hint}", RATE_LIMITED, 429)
            if not 200 <= resp.status < 300:
                raise RdapError(f"{url} answered {resp.status}", RDAP_ERROR, resp.status)
            body = await resp.content.read(limit + 1)
    except aiohttp.ClientError as exc:
        raise RdapError(f"GET {url} failed: {exc or type(exc).__name__}") from exc
    if len(body) > limit:
        raise RdapError(f"{url} answered more than {limit} bytes")
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise RdapError(f"{url} did not answer JSON: {exc}") from exc


def parse_bootstrap(doc: Any) -> dict[str, str]:
    """{label suffix: RDAP base URL ending in '/'} from an RFC 9224 ``dns.json``; https first."""
    services = doc.get("services") if isinstance(doc, dict) else None
    if not isinstance(services, list):
        raise RdapError("the RDAP bootstrap document has no services list")
    out: dict[str, str] = {}
    for service in services:
        if not (isinstance(service, list) and len(service) >= 2):
            continue
        entries, urls = service[0], service[1]
        if not (isinstance(entries, list) and isinstance(urls, list)):
            continue
        usable = [u for u in urls if isinstance(u, str) and u.startswith(("https://", "http://"))]
        if not usable:
            continue
        usable.sort(key=lambda u: not u.startswith("https://"))
        base = usable[0] if usable[0].endswith("/") else usable[0] + "/"
        for entry in entries:
            if isinstance(entry, str) and entry:
                out[entry.lower().strip(".")] = base
    return out


class RdapBootstrap:
    """The TLD -> RDAP server map, fetched on first use and kept ``ttl_s`` seconds."""

    def __init__(
        self,
        url: str = IANA_RDAP_BOOTSTRAP,
        ttl_s: float = BOOTSTRAP_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.ttl_s = ttl_s
        self._clock = clock
        self._services: dict[str, str] | None = None
        self._hosts: set[str] = set()
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    def trusted(self, host: str) -> bool:
        """Whether ``host`` is the bootstrap's or one of the servers it lists (once fetched):
        the operator's choice, reached even on a private address."""
        host = host.lower()
        if host == (yarl.URL(self.url).raw_host or "").lower():
            return True
        return host in self._hosts

    def _fresh(self) -> dict[str, str] | None:
        if self._services is not None and self._clock() - self._fetched_at < self.ttl_s:
            return self._services
        return None

    async def services(self, session: aiohttp.ClientSession) -> dict[str, str]:
        services = self._fresh()
        if services is not None:
            return services
        async with self._lock:  # one fetch, however many checks ask at once
            services = self._fresh()
            if services is None:
                try:
                    doc = await _get_json(session, self.url, BOOTSTRAP_LIMIT)
                    services = parse_bootstrap(doc)
                except RdapError as exc:
                    raise RdapError(
                        f"RDAP bootstrap unavailable: {exc}", RDAP_BOOTSTRAP_FAILED
                    ) from exc
                self._services, self._fetched_at = services, self._clock()
                self._hosts = {(yarl.URL(b).raw_host or "").lower() for b in services.values()}
            return services

    async def base_url(self, session: aiohttp.ClientSession, domain: str) -> str | None:
        """The RDAP base URL for ``domain``: the longest label suffix the registry lists."""
        services = await self.services(session)
        labels = domain.split(".")
        for i in range(len(labels)):
            base = services.get(".".join(labels[i:]))
            if base is not None:
                return base
        return None


def _parse_date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def expiration_date(doc: Any) -> datetime | None:
    events = doc.get("events") if isinstance(doc, dict) else None
    for event in events if isinstance(events, list) else ():
        if isinstance(event, dict) and str(event.get("eventAction", "")).lower() == "expiration":
            moment = _parse_date(event.get("eventDate"))
            if moment is not None:
                return moment
    return None


def _vcard_fn(entity: dict[str, Any]) -> str | None:
    vcard = entity.get("vcardArray")
    if not (isinstance(vcard, list) and len(vcard) == 2 and isinstance(vcard[1], list)):
        return None
    for prop in vcard[1]:
        if isinstance(prop, list) and len(prop) >= 4 and prop[0] == "fn":
            value = prop[3]
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None


def registrar_name(doc: Any) -> str | None:
    entities = doc.get("entities") if isinstance(doc, dict) else None
    for entity in entities if isinstance(entities, list) else ():
        if not isinstance(entity, dict):
            continue
        roles = entity.get("roles")
        if isinstance(roles, list) and "registrar" in roles:
            return _vcard_fn(entity)
    return None


class DomainExpiryRunner:
    kind = "domain_expiry"

    def __init__(self, bootstrap: RdapBootstrap | None = None) -> None:
        self.bootstrap = bootstrap or RdapBootstrap()

    async def run(self, check: DomainExpiryCheck, lease: Lease) -> CheckResult:
        attempt = Attempt(lease)
        domain = check.domain.strip().rstrip(".").lower()
        details: dict[str, Any] = {"domain": domain}
        try:
            async with asyncio.timeout(check.timeout / 1000):
                doc = await self._lookup(domain, details, Policy.for_lease(lease))
        except SsrfBlocked as exc:
            return attempt.blocked(exc, details=details)
        except TimeoutError:
            message = f"no RDAP answer for {domain} within {check.timeout} ms"
            return attempt.finish("error", error=message, error_code=TIMEOUT, details=details)
        except RdapError as exc:
            if exc.status == 404:
                message = f"the registry has no record of {domain}"
                return attempt.finish(
                    "down", error=message, error_code=DOMAIN_NOT_FOUND, details=details
                )
            return attempt.finish(
                "error",
                status_code=exc.status,
                error=str(exc),
                error_code=exc.code,
                details=details,
            )

        expires = expiration_date(doc)
        if expires is None:
            message = f"the registry publishes no expiration date for {domain}"
            return attempt.finish(
                "error", error=message, error_code=RDAP_NO_EXPIRATION, details=details
            )
        facts: dict[str, Any] = {
            "domain": domain,
            "days_remaining": days_remaining(expires, utcnow()),
            "expiration_date": iso_utc(expires),
        }
        registrar = registrar_name(doc)
        if registrar is not None:
            facts["registrar"] = registrar
        details.update(facts)
        status = expiry_status(facts["days_remaining"], check.warn_days, check.critical_days)
        if status == "up":
            return attempt.finish("up", details=details)
        code = DOMAIN_EXPIRED if facts["days_remaining"] < 0 else DOMAIN_EXPIRING
        error = msgspec.json.encode(facts).decode()
        return attempt.finish(status, error=error, error_code=code, details=details)

    async def _lookup(self, domain: str, details: dict[str, Any], policy: Policy) -> Any:
        headers = {"Accept": "application/rdap+json", "User-Agent": USER_AGENT}
        connector = GuardedConnector(GuardedResolver(policy, self.bootstrap.trusted))
        async with aiohttp.ClientSession(
            headers=headers, connector=connector, trust_env=False
        ) as session:
            base = await self.bootstrap.base_url(session, domain)
            if base is None:
                tld = domain.rsplit(".", 1)[-1]
                raise RdapError(
                    f"the RDAP bootstrap lists no server for .{tld}", RDAP_UNSUPPORTED_TLD
                )
            url = f"{base}domain/{domain}"
            details["rdap_url"] = url
            return await _get_json(session, url, RESPONSE_LIMIT)
