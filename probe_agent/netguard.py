"""The agent's SSRF guard: every outbound connection a check makes is judged here first.

A check connects only to addresses this module has validated against the block list of
``shared.netguard``. A name is resolved once and EVERY address it resolves to is judged: the name
is refused if any one of them is blocked (a name that mixes public and private records is an
attack, not a misconfiguration). The connection then goes to one of those validated addresses,
never to a second resolution of the name, so DNS rebinding cannot slip a private address in
between the check and the connect. IP literals are judged before anything is resolved, in their
canonical form (``shared.netguard.canonical_host``): ``http://2130706433/`` and ``0x7f.1`` are
127.0.0.1 to the C library's resolver, so they are 127.0.0.1 here too. Checks that speak HTTP
(http, domain_expiry's RDAP lookups) connect through ``GuardedConnector``, which applies the same
rule on every redirect hop (its resolver and its ``connect`` run once per hop).

A lease with ``allow_private`` (the deployment's ``allow_private_targets`` or its region's own
flag, decided by the control plane) turns the guard off for that check.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_reqrep import ClientRequest
from aiohttp.connector import Connection
from aiohttp.resolver import DefaultResolver
from aiohttp.tracing import Trace

from probe_agent import dnscache
from probe_agent.millis import to_ms
from shared.netguard import blocked_range, ip_literal
from shared.protocol import Lease

# A connectable address as ``loop.sock_connect`` takes it, with its family.
Address = tuple[socket.AddressFamily, tuple[Any, ...]]


class SsrfBlocked(Exception):
    """A check was about to connect to a blocked address; nothing was connected."""

    def __init__(self, address: str, blocked: str, host: str | None = None) -> None:
        self.address = address
        # How long resolving ``host`` took, when it was resolved before being refused.
        self.dns_ms: float | None = None
        self.range = blocked
        self.host = host if host is not None and ip_literal(host) is None else None
        if self.host is not None:
            what = f"{self.host} resolves to {address}, which is"
        else:
            what = f"{address} is"
        super().__init__(
            f"{what} in the blocked range {blocked}: this region does not probe private addresses"
        )

    def details(self) -> dict[str, Any]:
        details: dict[str, Any] = {"address": self.address, "range": self.range}
        if self.host is not None:
            details["host"] = self.host
        return details


# The verdict of the (static) block list on an address, by its text: parsing an address and
# walking the ranges costs tens of microseconds, and the same few addresses come back every check.
_verdict = functools.lru_cache(maxsize=8192)(blocked_range)


@functools.lru_cache(maxsize=8192)
def literal(host: str) -> tuple[str, int] | None:
    """``ip_literal(host)`` as its canonical text and IP version (4 or 6), or None for a name.

    Cached by the host's text: reading an address (``ipaddress`` and, for ``127.1``-style
    spellings, ``inet_aton``'s rules) costs more than the rest of the guard, and an agent sees
    the same hosts on every check. The answer depends on the text alone, so a cached one is the
    one a fresh read would give; what the address may reach is still judged on every check.
    """
    ip = ip_literal(host)
    return None if ip is None else (str(ip), ip.version)


def _canonical(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address.split("%", 1)[0]))
    except ValueError:
        return address


@dataclass(frozen=True, slots=True)
class Policy:
    """What one check may connect to.

    ``exempt`` names single listeners, as (address, port), let through whatever the block list
    says; the runners take it from their owner (tests use it for a local first redirect hop).
    """

    allow_private: bool = False
    exempt: frozenset[tuple[str, int]] = frozenset()

    @classmethod
    def for_lease(cls, lease: Lease, exempt: frozenset[tuple[str, int]] = frozenset()) -> Policy:
        return cls(allow_private=lease.allow_private, exempt=exempt)

    def blocked(self, address: str, port: int) -> str | None:
        """The blocked range ``address`` is in, or None when this check may connect to it."""
        if self.allow_private:
            return None
        if self.exempt and (_canonical(address), port) in self.exempt:
            return None
        return _verdict(address)

    def check(self, host: str, addresses: Iterable[str], port: int) -> None:
        """Raise ``SsrfBlocked`` unless every one of ``addresses`` (what ``host`` resolved to)
        may be connected to. No address at all is refused too: the caller has nothing validated
        to connect to."""
        seen = False
        for address in addresses:
            seen = True
            hit = self.blocked(address, port)
            if hit is not None:
                raise SsrfBlocked(address, hit, host)
        if not seen:
            raise SsrfBlocked(host, "invalid address", host)


# Block every blocked range: the policy of anything that runs outside a leased check.
SECURE_DEFAULT = Policy()


async def resolve_stream(
    host: str, port: int, policy: Policy
) -> tuple[list[Address], float | None]:
    """The validated addresses to open a TCP connection to ``host`` on, and the milliseconds the
    name resolution took (None for an IP literal, which is not resolved).

    Raises ``SsrfBlocked`` when any address is blocked and ``socket.gaierror`` when the name
    does not resolve.
    """
    read = literal(host)
    if read is not None:
        text, version = read
        policy.check(host, (text,), port)
        if version == 6:
            return [(socket.AF_INET6, (text, port, 0, 0))], None
        return [(socket.AF_INET, (text, port))], None
    started = time.perf_counter()
    found = await dnscache.resolve(host, port)
    dns_ms = to_ms(max(0.0, time.perf_counter() - started))
    addresses: list[Address] = [
        (family, (ip, port, 0, 0) if family == socket.AF_INET6 else (ip, port))
        for family, ip in found
    ]
    try:
        policy.check(host, (str(sockaddr[0]) for _, sockaddr in addresses), port)
    except SsrfBlocked as exc:
        exc.dns_ms = dns_ms
        raise
    return addresses, dns_ms


def _nobody(_host: str) -> bool:
    return False


def _source(policy: Policy | Callable[[], Policy]) -> Callable[[], Policy]:
    """Where to find the policy: a fixed one is always itself."""
    if isinstance(policy, Policy):
        return lambda: policy
    return policy


class GuardedResolver(AbstractResolver):
    """The guard of an aiohttp session: it hands the connector only addresses the policy lets
    through, and judges the IP-literal hosts aiohttp connects to without asking a resolver
    (``judge_literal``, called by ``GuardedConnector``). Hosts ``trusted`` says yes to (servers
    the operator configured, names or literals as in the URL) are not judged.

    ``policy`` is a ``Policy``, or where to find the policy of the check being run (a session
    shared by many checks reads it from the running task's context). ``lookup`` resolves (by
    default aiohttp's own resolver); one that times the lookup leaves the judging here.
    """

    def __init__(
        self,
        policy: Policy | Callable[[], Policy],
        trusted: Callable[[str], bool] = _nobody,
        lookup: AbstractResolver | None = None,
    ) -> None:
        self._policy = _source(policy)
        self._trusted = trusted
        self._inner = lookup or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await self._inner.resolve(host, port, family)
        if not self._trusted(host):
            self._policy().check(host, (a["host"] for a in addresses), port)
        return addresses

    def judge_literal(self, host: str | None, port: int) -> None:
        """Raise ``SsrfBlocked`` when ``host`` is an IP literal the policy refuses, in any
        spelling the resolver would read as one (``127.1``, ``2130706433``, ``127.0.0.1.``):
        aiohttp hands those to the resolver as names, which would look them up first."""
        if host and (read := literal(host)) is not None and not self._trusted(host):
            self._policy().check(host, (read[0],), port)

    async def close(self) -> None:
        await self._inner.close()


class GuardedConnector(aiohttp.TCPConnector):
    """An aiohttp connector whose every hop, redirects included, is judged by ``guard`` before
    anything opens: names as it resolves them, IP literals here. It never caches a name: each hop
    is resolved and judged afresh. Other keywords are ``TCPConnector``'s.
    """

    def __init__(self, guard: GuardedResolver, **kw: Any) -> None:
        super().__init__(resolver=guard, use_dns_cache=False, **kw)
        self._guard = guard

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's signature)
    ) -> Connection:
        self._guard.judge_literal(req.url.raw_host, req.port or 0)
        return await super().connect(req, traces, timeout)
