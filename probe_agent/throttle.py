"""Per-host throttle: at most ``per_host_max_inflight`` checks of one org at one (host, port).

A burst of one tenant's monitors against one upstream must not look like a probe of it, and must
not starve another tenant's monitor of the same host: the cap is per (org, host, port). A check
over the cap is not run; its result is ``degraded`` with error "throttled: host concurrency cap"
(``THROTTLED``), which the incident engine counts neither as failing nor as a recovery.

The executor keeps the counters in a plain dict (one event loop: no locks); this module says
which key a check has and what a throttled result looks like.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from probe_agent.checks.base import utcnow
from shared.checks import CheckSpec, DnsCheck, HttpCheck, IcmpCheck, TcpCheck, TlsCertCheck
from shared.codes import THROTTLED
from shared.protocol import CheckResult, Lease

THROTTLED_MESSAGE = "throttled: host concurrency cap"
DEFAULT_PER_HOST_MAX_INFLIGHT = 2

# (org id, host, port); ICMP has no port (0).
HostKey = tuple[str, str, int]


@lru_cache(maxsize=8192)
def _host(host: str) -> str:
    """One spelling per host: case, IPv6 brackets and a trailing dot do not make a new one
    (cached: the same hosts come back every check)."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.rstrip(".")


@lru_cache(maxsize=8192)
def _url_host_port(url: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    if port is None:
        port = 443 if parts.scheme.lower() == "https" else 80
    return _host(parts.hostname), port


def host_port(check: CheckSpec) -> tuple[str, int] | None:
    """The (host, port) a check probes, or None for kinds that probe no one host (domain expiry
    asks a registry; a DNS check without a server asks the agent's own resolver)."""
    if isinstance(check, HttpCheck):
        return _url_host_port(check.url)
    if isinstance(check, TcpCheck | TlsCertCheck):
        return _host(check.host), check.port
    if isinstance(check, IcmpCheck):
        return _host(check.host), 0
    if isinstance(check, DnsCheck) and check.server is not None:
        return _host(check.server), check.port
    return None


def host_key(lease: Lease) -> HostKey | None:
    where = host_port(lease.check)
    if where is None:
        return None
    return (lease.org_id, where[0], where[1])


def throttled_result(lease: Lease, key: HostKey, cap: int) -> CheckResult:
    """The result of a check held back by the cap: never run, so no latency."""
    now = utcnow()
    return CheckResult(
        lease_id=lease.lease_id,
        target_id=lease.target_id,
        scheduled_at=lease.scheduled_at,
        started_at=now,
        finished_at=now,
        status="degraded",
        error=THROTTLED_MESSAGE,
        error_code=THROTTLED,
        details={"host": key[1], "port": key[2], "per_host_max_inflight": cap},
    )
