"""Per-process name resolution for HTTP and TCP checks, cached for as long as the records say.

Thousands of checks of one agent often share a handful of names; resolving each of them for
every check costs a DNS round trip and a thread of ``getaddrinfo`` per check. ``DnsCache`` asks
the system's DNS servers (``/etc/resolv.conf``, with dnspython) for A and AAAA records and keeps
the addresses until the shortest TTL of the answer (a CNAME chain's included) runs out, at most
``MAX_TTL_S``; a TTL of 0 is never cached. A result's ``dns_ms`` is then the time this check
spent resolving: near zero on a cache hit.

What DNS cannot answer the way the C library would goes to ``getaddrinfo``, uncached, as before:
names in ``/etc/hosts`` (read again when it changes), single-label names (the search list),
and names DNS does not resolve (NXDOMAIN, no answer, no reachable server). The SSRF guard judges
whatever comes back, cached or not, on every check (netguard.py).

Asking DNS here (dnspython: a socket, a query built and an answer parsed in Python, twice) costs
several times what the C library's ``getaddrinfo`` does, and it only pays when the answer is
used again within its TTL. So a name is resolved by ``getaddrinfo`` the first time it is looked
up (most names of an agent's checks are looked up once per interval: a record whose TTL is
shorter than that is never reused); DNS is asked, and the answer kept, from its second lookup
on. A name whose kept answer ran out before it was looked up again (a TTL shorter than the time
between its checks) goes back to ``getaddrinfo`` for ``SHORT_TTL_RECHECK_S``, then DNS is asked
again in case its TTL grew. Every lookup still resolves when the TTL says so: only an answer
within its TTL is ever reused.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import dns.asyncresolver
import dns.exception
import dns.resolver
from aiohttp.abc import AbstractResolver, ResolveResult

# Longest a record is kept, whatever its TTL says (a renumbered target is seen within this).
MAX_TTL_S = 300.0
# Names kept at most; past it the cache is emptied (the names of one agent are a few thousand).
MAX_NAMES = 50_000
# How long DNS may take before the C library is asked instead, and how long after DNS failed to
# answer at all (timeout, no server) every name goes to the C library straight away.
DNS_LIFETIME_S = 2.0
DNS_DOWN_S = 30.0
HOSTS_FILE = Path("/etc/hosts")
# How long a name whose answers run out before it is looked up again is resolved by the C
# library only (its TTL is shorter than the time between its checks: a cache cannot help it).
SHORT_TTL_RECHECK_S = MAX_TTL_S

# (family, address) pairs, IPv4 first.
Addresses = list[tuple[socket.AddressFamily, str]]


def _hosts_names(path: Path) -> frozenset[str]:
    names: set[str] = set()
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        names.update(name.lower().rstrip(".") for name in fields[1:])
    return frozenset(names)


async def _getaddrinfo(host: str, port: int) -> Addresses:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [(family, str(sockaddr[0])) for family, _, _, _, sockaddr in infos]


@dataclass
class DnsCache:
    resolver: dns.asyncresolver.Resolver | None = None
    clock: Callable[[], float] = time.monotonic
    hosts_file: Path = HOSTS_FILE
    # The C library's resolver (``getaddrinfo``); tests put their own in.
    c_lookup: Callable[[str, int], Awaitable[Addresses]] = _getaddrinfo
    # name -> (expires at, addresses); kept past its expiry to tell a short TTL.
    _entries: dict[str, tuple[float, Addresses]] = field(default_factory=dict)
    # Names looked up once, not asked of DNS yet.
    _seen_once: set[str] = field(default_factory=set)
    # name -> until when it goes to the C library only (its TTL ran out between two lookups).
    _short: dict[str, float] = field(default_factory=dict)
    _hosts: frozenset[str] = frozenset()
    _hosts_mtime: float | None = None
    _dns_down_until: float = 0.0
    lookups: int = 0  # questions sent to DNS (two per name: A and AAAA)
    fallbacks: int = 0  # names handed to getaddrinfo

    def _resolver(self) -> dns.asyncresolver.Resolver | None:
        if self.resolver is None:
            try:
                self.resolver = dns.asyncresolver.Resolver()
            except (dns.resolver.NoResolverConfiguration, OSError):
                return None
            self.resolver.lifetime = DNS_LIFETIME_S
        return self.resolver

    def _in_hosts_file(self, name: str) -> bool:
        try:
            mtime = os.stat(self.hosts_file).st_mtime
        except OSError:
            mtime = None
        if mtime != self._hosts_mtime:
            self._hosts_mtime = mtime
            self._hosts = _hosts_names(self.hosts_file) if mtime is not None else frozenset()
        return name in self._hosts

    async def addresses(self, host: str, port: int) -> Addresses:
        """The addresses of ``host`` (a name, not an IP literal). Raises ``socket.gaierror``
        when it does not resolve, as ``getaddrinfo`` does."""
        name = host.lower().rstrip(".")
        now = self.clock()
        cached = self._entries.get(name)
        if cached is not None:
            if cached[0] > now:
                return cached[1]
            del self._entries[name]
            # Kept, and run out before this lookup: its TTL is shorter than the time between
            # this name's checks, and asking DNS for it is all cost.
            self._short[name] = now + SHORT_TTL_RECHECK_S
        found = None
        if "." in name and now >= self._dns_down_until and self._worth_asking(name, now):
            found = await self._from_dns(name)
        if found is None:
            self.fallbacks += 1
            return await self.c_lookup(host, port)
        ttl, addrs = found
        if ttl > 0:
            if len(self._entries) >= MAX_NAMES:
                self._entries.clear()
            self._entries[name] = (now + min(ttl, MAX_TTL_S), addrs)
        else:
            self._short[name] = now + SHORT_TTL_RECHECK_S
        return addrs

    def _worth_asking(self, name: str, now: float) -> bool:
        """Whether DNS is asked for ``name`` (and its answer kept) rather than the C library:
        not for a name in the hosts file, nor on its first lookup, nor while its TTL is known
        to be shorter than the time between its lookups."""
        if self._in_hosts_file(name):
            return False
        short_until = self._short.get(name)
        if short_until is not None:
            if short_until > now:
                return False
            del self._short[name]
            return True
        if name in self._seen_once:
            self._seen_once.discard(name)
            return True
        if len(self._seen_once) >= MAX_NAMES:
            self._seen_once.clear()
        if len(self._short) >= MAX_NAMES:
            self._short.clear()
        self._seen_once.add(name)
        return False

    async def _from_dns(self, name: str) -> tuple[float, Addresses] | None:
        resolver = self._resolver()
        if resolver is None:
            return None
        self.lookups += 2
        answers = await asyncio.gather(
            resolver.resolve(name, "A", raise_on_no_answer=False, search=False),
            resolver.resolve(name, "AAAA", raise_on_no_answer=False, search=False),
            return_exceptions=True,
        )
        addrs: Addresses = []
        ttl = MAX_TTL_S
        wall = time.time()
        for family, answer in zip((socket.AF_INET, socket.AF_INET6), answers, strict=True):
            if isinstance(answer, BaseException):
                if isinstance(answer, dns.exception.Timeout | dns.resolver.NoNameservers | OSError):
                    self._dns_down_until = self.clock() + DNS_DOWN_S
                elif not isinstance(answer, dns.exception.DNSException):
                    raise answer
                continue
            if answer.rrset is None:
                continue
            ttl = min(ttl, max(0.0, answer.expiration - wall))
            addrs += [(family, rdata.address) for rdata in answer.rrset]
        return (ttl, addrs) if addrs else None


_shared: DnsCache | None = None


def shared_cache() -> DnsCache:
    """The process's cache (one per agent process: ``--processes N`` has N)."""
    global _shared
    if _shared is None:
        _shared = DnsCache()
    return _shared


# Switched off by ``--dns-cache off``: every check resolves with getaddrinfo, as before.
enabled = True


async def resolve(host: str, port: int) -> Addresses:
    """What HTTP and TCP checks resolve with: the shared cache, or getaddrinfo when it is off."""
    if enabled:
        return await shared_cache().addresses(host, port)
    return await _getaddrinfo(host, port)


class CachedResolver(AbstractResolver):
    """aiohttp's resolver interface over ``resolve`` (aiohttp asks only for names)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await resolve(host, port)
        if family in (socket.AF_INET, socket.AF_INET6):
            found = [a for a in found if a[0] == family]
            if not found:
                raise OSError(f"{host} has no address of family {family.name}")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=fam,
                proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
            for fam, address in found
        ]

    async def close(self) -> None:
        return None
