"""The agent's per-process DNS cache, against a real UDP DNS server on 127.0.0.1 (records with a
300 s TTL): names are kept for their TTL, the SSRF guard still judges every check, and what DNS
does not answer goes to the C library, as does a name's first lookup and a name whose TTL runs
out between its lookups (``CLibrary`` stands in for getaddrinfo, which cannot see the test
server)."""

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


class CLibrary:
    """getaddrinfo's stand-in: the names it was asked; every name is 192.0.2.99 (a
    documentation address, refused by the SSRF guard) but ``nope.example.test``, which does not
    resolve, and ``localhost``."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[tuple[socket.AddressFamily, str]]:
        self.asked.append(host)
        if host.startswith("nope."):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if host == "localhost":
            return [(socket.AF_INET, "127.0.0.1")]
        return [(socket.AF_INET, "192.0.2.99")]


def cache_for(
    server: DnsServer, clock: Clock, hosts: Path, c_library: CLibrary | None = None
) -> DnsCache:
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = server.port
    return DnsCache(
        resolver=resolver, clock=clock, hosts_file=hosts, c_lookup=c_library or CLibrary()
    )


@pytest.fixture
def hosts(tmp_path: Path) -> Path:
    path = tmp_path / "hosts"
    path.write_text("127.0.0.1 localhost\n::1 localhost ip6-localhost\n")
    return path


async def test_a_name_is_kept_for_its_ttl(dns_server: DnsServer, hosts: Path) -> None:  # noqa: F811
    clock = Clock()
    c_library = CLibrary()
    cache = cache_for(dns_server, clock, hosts, c_library)
    # The first lookup of a name goes to the C library: an answer used once is not worth DNS.
    assert await cache.addresses("www.example.test", 443) == [(socket.AF_INET, "192.0.2.99")]
    assert dns_server.queries == [] and c_library.asked == ["www.example.test"]
    clock.now += 1
    first = await cache.addresses("www.example.test", 443)
    # IPv4 first (connected to first), then IPv6.
    assert sorted(first[:2]) == [(socket.AF_INET, "192.0.2.10"), (socket.AF_INET, "192.0.2.11")]
    assert (socket.AF_INET6, "2001:db8::1") in first
    asked = list(dns_server.queries)
    assert sorted(asked) == [("www.example.test.", "A"), ("www.example.test.", "AAAA")]
    # Within the TTL: from the cache, whatever the spelling.
    clock.now += 299
    assert await cache.addresses("WWW.example.test.", 443) == first
    assert dns_server.queries == asked and c_library.asked == ["www.example.test"]


async def test_a_name_whose_ttl_runs_out_between_lookups_goes_to_the_c_library(
    dns_server: DnsServer,  # noqa: F811
    hosts: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A TTL shorter than the time between a name's checks: each check still resolves, by the
    C library (cheaper than DNS from Python), until the name is asked of DNS again."""
    monkeypatch.setattr(dnscache, "SHORT_TTL_RECHECK_S", 1000.0)
    clock = Clock()
    c_library = CLibrary()
    cache = cache_for(dns_server, clock, hosts, c_library)
    await cache.addresses("www.example.test", 443)  # first lookup: C library
    await cache.addresses("www.example.test", 443)  # second: DNS, kept for 300 s
    assert len(dns_server.queries) == 2 and len(c_library.asked) == 1
    for _ in range(3):  # looked up every 301 s: the answer has always run out
        clock.now += 301
        assert await cache.addresses("www.example.test", 443) == [(socket.AF_INET, "192.0.2.99")]
    assert len(dns_server.queries) == 2 and len(c_library.asked) == 4
    # After SHORT_TTL_RECHECK_S, DNS is asked again (the TTL may have grown).
    clock.now += dnscache.SHORT_TTL_RECHECK_S
    again = await cache.addresses("www.example.test", 443)
    assert (socket.AF_INET, "192.0.2.10") in again
    assert len(dns_server.queries) == 4 and len(c_library.asked) == 4


async def test_the_guard_judges_cached_addresses_on_every_check(
    dns_server: DnsServer,  # noqa: F811
    hosts: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = cache_for(dns_server, Clock(), hosts)
    monkeypatch.setattr(dnscache, "_shared", cache)
    monkeypatch.setattr(dnscache, "enabled", True)
    # 192.0.2.0/24 is a documentation range: refused by default, from the C library (first
    # lookup), from DNS (second) or cached (third).
    for _ in range(3):
        with pytest.raises(SsrfBlocked):
            await resolve_stream("www.example.test", 80, SECURE_DEFAULT)
    assert len(dns_server.queries) == 2  # one lookup (A and AAAA) for the last two checks
    # A check allowed private targets connects to what the name resolved to, from the cache.
    addrs, dns_ms = await resolve_stream("www.example.test", 80, Policy(allow_private=True))
    assert (socket.AF_INET, ("192.0.2.10", 80)) in addrs
    assert (socket.AF_INET6, ("2001:db8::1", 80, 0, 0)) in addrs
    assert dns_ms is not None and len(dns_server.queries) == 2


async def test_hosts_file_names_and_unknown_names_go_to_the_c_library(
    dns_server: DnsServer,  # noqa: F811
    hosts: Path,
) -> None:
    c_library = CLibrary()
    cache = cache_for(dns_server, Clock(), hosts, c_library)
    for _ in range(2):  # the hosts file's names never go to DNS
        found = await cache.addresses("localhost", 80)
        assert (socket.AF_INET, "127.0.0.1") in found
    assert dns_server.queries == [] and cache.fallbacks == 2
    # NXDOMAIN from DNS (second lookup): the C library gets its say (and raises as
    # getaddrinfo does).
    for _ in range(2):
        with pytest.raises(socket.gaierror):
            await cache.addresses("nope.example.test", 80)
    assert len(dns_server.queries) == 2
    assert cache.fallbacks == 4 and c_library.asked.count("nope.example.test") == 2


async def test_off_resolves_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dnscache, "enabled", False)
    monkeypatch.setattr(dnscache, "_shared", None)
    found = await dnscache.resolve("localhost", 80)
    assert (socket.AF_INET, "127.0.0.1") in found
    assert dnscache._shared is None  # the cache was never made
