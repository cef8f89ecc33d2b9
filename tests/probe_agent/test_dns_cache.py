"""The agent's per-process DNS cache, against a real UDP DNS server on 127.0.0.1 (records with a
300 s TTL): names are kept for their TTL, the SSRF guard still judges every check, and what DNS
does not answer goes to the C library."""

from __future__ import annotations

import socket
from pathlib import Path

import dns.asyncresolver
import pytest

from probe_agent import dnscache
from probe_agent.dnscache import DnsCache
from probe_agent.netguard import SECURE_DEFAULT, Policy, SsrfBlocked, resolve_stream
from tests.probe_agent.test_dns_check import DnsServer, dns_server  # noqa: F401 (fixture)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache_for(server: DnsServer, clock: Clock, hosts: Path) -> DnsCache:
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = server.port
    return DnsCache(resolver=resolver, clock=clock, hosts_file=hosts)


@pytest.fixture
def hosts(tmp_path: Path) -> Path:
    path = tmp_path / "hosts"
    path.write_text("127.0.0.1 localhost\n::1 localhost ip6-localhost\n")
    return path


async def test_a_name_is_kept_for_its_ttl(dns_server: DnsServer, hosts: Path) -> None:  # noqa: F811
    clock = Clock()
    cache = cache_for(dns_server, clock, hosts)
    first = await cache.addresses("www.example.test", 443)
    # IPv4 first (connected to first), then IPv6.
    assert sorted(first[:2]) == [(socket.AF_INET, "192.0.2.10"), (socket.AF_INET, "192.0.2.11")]
    assert (socket.AF_INET6, "2001:db8::1") in first
    asked = list(dns_server.queries)
    assert sorted(asked) == [("www.example.test.", "A"), ("www.example.test.", "AAAA")]
    # Within the TTL: from the cache, whatever the spelling.
    clock.now += 299
    assert await cache.addresses("WWW.example.test.", 443) == first
    assert dns_server.queries == asked
    # Past it: asked again.
    clock.now += 2
    assert sorted(await cache.addresses("www.example.test", 443)) == sorted(first)
    assert len(dns_server.queries) == 4


async def test_the_guard_judges_cached_addresses_on_every_check(
    dns_server: DnsServer,  # noqa: F811
    hosts: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = cache_for(dns_server, Clock(), hosts)
    monkeypatch.setattr(dnscache, "_shared", cache)
    monkeypatch.setattr(dnscache, "enabled", True)
    # 192.0.2.0/24 is a documentation range: refused by default, fresh or cached.
    for _ in range(2):
        with pytest.raises(SsrfBlocked):
            await resolve_stream("www.example.test", 80, SECURE_DEFAULT)
    assert len(dns_server.queries) == 2  # one lookup (A and AAAA) for both checks
    # A check allowed private targets connects to what the name resolved to, from the cache.
    addrs, dns_ms = await resolve_stream("www.example.test", 80, Policy(allow_private=True))
    assert (socket.AF_INET, ("192.0.2.10", 80)) in addrs
    assert (socket.AF_INET6, ("2001:db8::1", 80, 0, 0)) in addrs
    assert dns_ms is not None and len(dns_server.queries) == 2


async def test_hosts_file_names_and_unknown_names_go_to_the_c_library(
    dns_server: DnsServer,  # noqa: F811
    hosts: Path,
) -> None:
    cache = cache_for(dns_server, Clock(), hosts)
    found = await cache.addresses("localhost", 80)
    assert (socket.AF_INET, "127.0.0.1") in found
    assert dns_server.queries == [] and cache.fallbacks == 1
    # NXDOMAIN from DNS: the C library gets its say (and raises as getaddrinfo does).
    with pytest.raises(socket.gaierror):
        await cache.addresses("nope.example.test", 80)
    assert cache.fallbacks == 2


async def test_off_resolves_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dnscache, "enabled", False)
    monkeypatch.setattr(dnscache, "_shared", None)
    found = await dnscache.resolve("localhost", 80)
    assert (socket.AF_INET, "127.0.0.1") in found
    assert dnscache._shared is None  # the cache was never made
