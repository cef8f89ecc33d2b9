"""Every spelling of a blocked address is refused by the agent before anything is resolved or
connected: IPv6 forms that carry a blocked IPv4 address, the local-use NAT64 prefix, and the
numeric IPv4 spellings the C library reads without DNS (``127.1``, ``0x7f.1``, ``2130706433``).

Each runs through a real runner against a real listener on 127.0.0.1 that counts what it
accepts, with every ``socket.connect`` of the process recorded (``connects``).
"""

from __future__ import annotations

from typing import Any

import pytest

from probe_agent.checks.http import HttpRunner
from probe_agent.checks.tcp import TcpRunner
from probe_agent.netguard import literal
from shared.checks import HttpCheck, TcpCheck
from shared.netguard import ip_literal
from shared.protocol import CheckResult
from tests.probe_agent.conftest import Listener
from tests.probe_agent.helpers import make_lease

# Teredo: server 65.54.227.120, client 127.0.0.1 (stored with its bits inverted).
TEREDO = "2001:0:4136:e378:8000:63bf:80ff:fffe"
ISATAP = "2001:470::5efe:a00:1"  # ISATAP interface id carrying 10.0.0.1

# (host as written, the address it is judged as, the blocked range reported)
FORMS = [
    ("[::127.0.0.1]", "::7f00:1", "127.0.0.0/8 (embedded in ::7f00:1)"),
    ("[::ffff:0:7f00:1]", "::ffff:0:7f00:1", "127.0.0.0/8 (embedded in ::ffff:0:7f00:1)"),
    ("[64:ff9b:1::a00:1]", "64:ff9b:1::a00:1", "64:ff9b:1::/48"),
    ("[2002:7f00:1::]", "2002:7f00:1::", "127.0.0.0/8 (embedded in 2002:7f00:1::)"),
    (f"[{TEREDO}]", TEREDO, f"127.0.0.0/8 (embedded in {TEREDO})"),
    ("[2001:470::5efe:10.0.0.1]", ISATAP, f"10.0.0.0/8 (embedded in {ISATAP})"),
    ("[::]", "::", "::/128"),
    ("127.1", "127.0.0.1", "127.0.0.0/8"),
    ("0x7f.1", "127.0.0.1", "127.0.0.0/8"),
    ("2130706433", "127.0.0.1", "127.0.0.0/8"),
    ("0177.0.0.1", "127.0.0.1", "127.0.0.0/8"),
    ("127.0.0.1.", "127.0.0.1", "127.0.0.0/8"),
]


def assert_refused_unresolved(result: CheckResult, address: str, blocked: str) -> None:
    """Refused as the address itself: no lookup (``dns_ms``), no name in the details."""
    assert result.status == "error", result
    assert result.error_code == "SSRF_BLOCKED", result
    assert result.details["address"] == address
    assert result.details["range"] == blocked
    assert "host" not in result.details
    assert result.timings.dns_ms is None
    assert result.timings.connect_ms is None


@pytest.mark.parametrize(("host", "address", "blocked"), FORMS)
async def test_every_form_of_a_blocked_address_is_refused_with_zero_connections(
    host: str, address: str, blocked: str, listener: Listener, connects: list[Any]
) -> None:
    http = HttpCheck(url=f"http://{host}:{listener.port}/", timeout=2000)
    async with HttpRunner() as runner:
        result = await runner.run(http, make_lease(http, allow_private=False))
    assert_refused_unresolved(result, address, blocked)
    tcp = TcpCheck(host=host, port=listener.port, timeout=2000)
    runner = TcpRunner()
    # Twice: the second read of the host comes from the agent's literal cache (netguard.literal)
    # and is refused all the same.
    for _ in range(2):
        result = await runner.run(tcp, make_lease(tcp, allow_private=False))
        assert_refused_unresolved(result, address, blocked)
    assert listener.accepted == 0
    assert connects == []


# Hosts the literal cache must read exactly as ``shared.netguard.ip_literal`` does: addresses in
# every spelling (IPv6 with and without brackets, zone ids, IPv4-mapped and -embedding forms,
# inet_aton's numeric ones), and names and near-misses that are not addresses.
LITERAL_CASES = [
    *(host for host, _, _ in FORMS),
    *(address for _, address, _ in FORMS),
    "127.0.0.1",
    "93.184.216.34",
    "::1",
    "[::1]",
    "::FFFF:7F00:1",
    "[::ffff:127.0.0.1]",
    "::ffff:10.0.0.1",
    "[::ffff:93.184.216.34]",
    "fe80::1%eth0",
    "[fe80::1%25eth0]",
    "2606:2800:220:1::",
    "0x7F.0.0.1",
    "4294967295",
    "4294967296",
    "256.1.1.1",
    "1.2.3.4.5",
    "example.com",
    "EXAMPLE.com.",
    "deadbeef",
    "abc",
    "1.2.3.04",
    "",
    "127.0.0.1%eth0",
]


@pytest.mark.parametrize("host", LITERAL_CASES)
def test_the_literal_cache_reads_a_host_as_the_uncached_parse_does(host: str) -> None:
    fresh = ip_literal(host)
    expected = None if fresh is None else (str(fresh), fresh.version)
    assert literal(host) == expected
    assert literal(host) == expected  # from the cache now
    assert literal.cache_info().hits >= 1


@pytest.mark.parametrize("host", ["127.1", "0x7f.1", "2130706433", "0177.0.0.1"])
async def test_a_region_allowing_private_targets_reaches_the_address_the_spelling_names(
    host: str, listener: Listener
) -> None:
    # The spelling is an address, not a name to refuse: allowed, it reaches 127.0.0.1.
    tcp = TcpCheck(host=host, port=listener.port, timeout=2000)
    result = await TcpRunner().run(tcp, make_lease(tcp, allow_private=True))
    assert result.status == "up", result
    assert result.details["address"] == "127.0.0.1"
    assert result.timings.dns_ms is None  # read as an address, never looked up
