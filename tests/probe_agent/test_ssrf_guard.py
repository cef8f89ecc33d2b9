"""The agent's SSRF guard, through the real runners against real listeners on 127.0.0.1.

A lease without ``allow_private`` (the secure default) must never open a connection to a blocked
address: the listeners here count every connection they accept, and an audit hook records every
``socket.connect`` this process makes while a test looks, so "blocked" means zero attempts, not
an attempt that happened to fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from probe_agent.checks.dns import DnsRunner
from probe_agent.checks.http import HttpRunner
from probe_agent.checks.tcp import TcpRunner
from probe_agent.checks.tls_cert import TlsCertRunner
from probe_agent.netguard import Policy, SsrfBlocked
from shared.checks import DnsCheck, HttpCheck, TcpCheck, TlsCertCheck
from shared.protocol import CheckResult
from tests.probe_agent.conftest import Listener, Target
from tests.probe_agent.helpers import make_lease, self_signed_server_context


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received = 0

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received += 1


# --- the policy itself ------------------------------------------------------------------------


def test_a_name_is_refused_when_any_of_its_addresses_is_blocked() -> None:
    policy = Policy()
    policy.check("example.com", ["93.184.216.34", "2606:2800:220:1::"], 443)
    with pytest.raises(SsrfBlocked) as info:
        policy.check("rebind.example", ["93.184.216.34", "10.0.0.7"], 443)
    assert info.value.details() == {
        "address": "10.0.0.7",
        "range": "10.0.0.0/8",
        "host": "rebind.example",
    }
    assert str(info.value).startswith(
        "rebind.example resolves to 10.0.0.7, which is in the blocked range 10.0.0.0/8"
    )
    with pytest.raises(SsrfBlocked):  # nothing validated to connect to
        policy.check("empty.example", [], 443)


def test_allow_private_and_exempt_listeners() -> None:
    Policy(allow_private=True).check("localhost", ["127.0.0.1", "::1", "169.254.169.254"], 80)
    exempt = Policy(exempt=frozenset({("::1", 8080)}))
    exempt.check("x", ["0:0:0:0:0:0:0:1"], 8080)  # compared in canonical form
    with pytest.raises(SsrfBlocked):
        exempt.check("x", ["::1"], 8081)  # another port of the same address is not exempt
    with pytest.raises(SsrfBlocked):
        exempt.check("x", ["127.0.0.1"], 8080)


# --- HTTP -------------------------------------------------------------------------------------


async def http(url: str, *, allow_private: bool = False, **kw: Any) -> CheckResult:
    spec = HttpCheck(url=url, timeout=3000, follow_redirects=True, max_redirects=5)
    async with HttpRunner(**kw) as runner:
        return await runner.run(spec, make_lease(spec, allow_private=allow_private))


def assert_blocked(result: CheckResult, address: str, blocked: str) -> None:
    assert result.status == "error", result
    assert result.error_code == "SSRF_BLOCKED"
    assert result.error is not None
    assert address in result.error and blocked in result.error
    assert result.details["address"] == address
    assert result.details["range"] == blocked
    assert result.timings.connect_ms is None


async def test_a_name_resolving_to_loopback_is_blocked_with_zero_connections(
    listener: Listener, connects: list[Any]
) -> None:
    result = await http(f"http://localhost:{listener.port}/")
    assert_blocked(result, "127.0.0.1", "127.0.0.0/8")
    assert result.details["host"] == "localhost"
    assert result.error is not None and result.error.startswith("localhost resolves to 127.0.0.1")
    assert result.timings.dns_ms is not None  # it was resolved, then refused
    assert listener.accepted == 0
    assert connects == []


LITERALS = [
    ("169.254.169.254", "169.254.169.254", "169.254.0.0/16"),
    ("100.64.0.1", "100.64.0.1", "100.64.0.0/10"),
    ("::ffff:10.0.0.1", "::ffff:a00:1", "10.0.0.0/8 (embedded in ::ffff:a00:1)"),
    ("64:ff9b::a9fe:a9fe", "64:ff9b::a9fe:a9fe", "169.254.0.0/16 (embedded in 64:ff9b::a9fe:a9fe)"),
    ("127.0.0.1", "127.0.0.1", "127.0.0.0/8"),
]


@pytest.mark.parametrize(("host", "address", "blocked"), LITERALS)
async def test_blocked_ip_literal_urls_are_never_connected(
    host: str, address: str, blocked: str, connects: list[Any]
) -> None:
    shown = f"[{host}]" if ":" in host else host
    result = await http(f"http://{shown}:8080/latest/meta-data")
    assert_blocked(result, address, blocked)
    assert "host" not in result.details
    assert connects == []


async def test_allow_private_on_the_lease_lets_loopback_through(
    target: Target, connects: list[Any]
) -> None:
    assert target.server is not None
    result = await http(f"http://localhost:{target.server.port}/ok", allow_private=True)
    assert result.status == "up", result
    literal = await http(target.url("/ok"), allow_private=True)
    assert literal.status == "up", literal
    assert len(target.received) == 2
    # The audit hook does see the connections a check makes: its silence above means something.
    assert ("127.0.0.1", target.server.port) in connects


class Redirector:
    """An HTTP server whose ``/to?url=…`` answers 302 to ``url``."""

    def __init__(self) -> None:
        self.requests = 0
        self.server: TestServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None and self.server.port is not None
        return self.server.port

    async def _to(self, request: web.Request) -> web.Response:
        self.requests += 1
        raise web.HTTPFound(request.query["url"])

    async def _ok(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.Response(text="landed")


@pytest.fixture
async def redirector() -> AsyncIterator[Redirector]:
    r = Redirector()
    app = web.Application()
    app.router.add_get("/to", r._to)
    app.router.add_get("/ok", r._ok)
    r.server = TestServer(app, host="127.0.0.1")
    await r.server.start_server()
    try:
        yield r
    finally:
        await r.server.close()


@pytest.mark.parametrize(
    ("location", "address"),
    [
        ("http://localhost:{port}/", "127.0.0.1"),
        ("http://127.0.0.1:{port}/", "127.0.0.1"),
        ("http://[::ffff:127.0.0.1]:{port}/", "::ffff:7f00:1"),
    ],
)
async def test_every_redirect_hop_is_judged_again(
    redirector: Redirector, listener: Listener, connects: list[Any], location: str, address: str
) -> None:
    # The first hop is allowed (its one listener is exempt), the second goes to another
    # loopback listener, which is not: the guard runs again on the redirect.
    from urllib.parse import quote

    hop2 = location.format(port=listener.port)
    first = f"http://localhost:{redirector.port}/to?url={quote(hop2, safe='')}"
    result = await http(first, ssrf_exempt=frozenset({("127.0.0.1", redirector.port)}))
    assert redirector.requests == 1  # the first hop was made
    assert result.error_code == "SSRF_BLOCKED", result
    assert result.status == "error"
    assert result.details["address"] == address
    assert result.details["range"].startswith("127.0.0.0/8")
    assert listener.accepted == 0
    assert [a for a in connects if a[1] == listener.port] == []


async def test_redirects_within_the_allowed_listener_still_work(redirector: Redirector) -> None:
    hop2 = f"http://localhost:{redirector.port}/ok"
    first = f"http://127.0.0.1:{redirector.port}/to?url={hop2}"
    result = await http(first, ssrf_exempt=frozenset({("127.0.0.1", redirector.port)}))
    assert result.status == "up", result
    assert result.details["redirects"] == 1
    assert redirector.requests == 2


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://x/"])
async def test_only_http_and_https_redirects_are_followed(
    redirector: Redirector, connects: list[Any], location: str
) -> None:
    first = f"http://127.0.0.1:{redirector.port}/to?url={location}"
    result = await http(first, allow_private=True)
    assert result.status == "down", result
    assert result.error_code == "INVALID_RESPONSE"
    assert redirector.requests == 1
    assert [a for a in connects if a[1] != redirector.port] == []


# --- TCP, TLS certificate, DNS server ---------------------------------------------------------


async def tcp(host: str, port: int, *, allow_private: bool = False) -> CheckResult:
    spec = TcpCheck(host=host, port=port, timeout=3000)
    return await TcpRunner().run(spec, make_lease(spec, allow_private=allow_private))


async def tls(host: str, port: int, *, allow_private: bool = False) -> CheckResult:
    spec = TlsCertCheck(host=host, port=port, timeout=3000)
    return await TlsCertRunner().run(spec, make_lease(spec, allow_private=allow_private))


@pytest.mark.parametrize(("host", "address", "blocked"), LITERALS)
async def test_blocked_tcp_and_tls_hosts_are_never_connected(
    host: str, address: str, blocked: str, connects: list[Any]
) -> None:
    assert_blocked(await tcp(host, 22), address, blocked)
    assert_blocked(await tls(f"[{host}]" if ":" in host else host, 443), address, blocked)
    assert connects == []


async def test_tcp_and_tls_names_resolving_to_loopback_are_blocked(
    listener: Listener, connects: list[Any]
) -> None:
    for run in (tcp, tls):
        result = await run("localhost", listener.port)
        assert_blocked(result, "127.0.0.1", "127.0.0.0/8")
        assert result.details["host"] == "localhost"
        assert result.timings.dns_ms is not None
    assert listener.accepted == 0
    assert connects == []


async def test_tcp_and_tls_allow_private_reach_loopback(listener: Listener, tmp_path: Path) -> None:
    result = await tcp("localhost", listener.port, allow_private=True)
    assert result.status == "up", result
    for _ in range(100):
        if listener.accepted:
            break
        await asyncio.sleep(0.01)
    assert listener.accepted == 1
    server = await asyncio.start_server(
        lambda _r, w: w.close(), "127.0.0.1", 0, ssl=self_signed_server_context(tmp_path)
    )
    try:
        port = server.sockets[0].getsockname()[1]
        result = await tls("127.0.0.1", port, allow_private=True)
        # The test certificate expires within a day (down), but it was fetched: no block.
        assert result.error_code == "CERT_EXPIRING", result
        assert result.details["address"] == "127.0.0.1"
        assert result.details["subject_common_name"] == "localhost"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_blocked_dns_server_is_never_queried() -> None:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _Datagrams, local_addr=("127.0.0.1", 0)
    )
    try:
        port = transport.get_extra_info("sockname")[1]
        spec = DnsCheck(name="example.com", server="127.0.0.1", port=port, timeout=1000)
        result = await DnsRunner().run(spec, make_lease(spec, allow_private=False))
        assert result.status == "error"
        assert result.error_code == "SSRF_BLOCKED"
        assert result.details["address"] == "127.0.0.1"
        assert result.details["range"] == "127.0.0.0/8"
        await asyncio.sleep(0.05)
        assert protocol.received == 0
        allowed = await DnsRunner().run(spec, make_lease(spec, allow_private=True))
        assert allowed.error_code != "SSRF_BLOCKED"
        assert protocol.received >= 1  # the same check, allowed, does reach the server
    finally:
        transport.close()


def test_a_runner_judges_each_lease_by_the_policy_the_lease_asks_for() -> None:
    exempt = frozenset({("127.0.0.1", 8080)})
    runner = TcpRunner(ssrf_exempt=exempt)
    for allow_private in (False, True):
        lease = make_lease(TcpCheck(host="127.0.0.1", port=1), allow_private=allow_private)
        # Built once per runner, and the policy a fresh one would be.
        assert runner.policy(lease) is runner.policy(lease)
        assert runner.policy(lease) == Policy.for_lease(lease, exempt)
    guarded = make_lease(TcpCheck(host="127.0.0.1", port=1), allow_private=False)
    with pytest.raises(SsrfBlocked):
        runner.policy(guarded).check("127.0.0.1", ["127.0.0.1"], 1)
