"""The TCP runner against real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from probe_agent.checks import stream
from probe_agent.checks.stream import connect
from probe_agent.checks.tcp import TcpRunner
from shared.checks import TcpCheck
from shared.protocol import CheckResult
from tests.probe_agent.helpers import closed_port, make_lease


async def check(host: str, port: int, timeout_ms: int = 2000) -> CheckResult:
    spec = TcpCheck(host=host, port=port, timeout=timeout_ms)
    lease = make_lease(spec)
    result = await TcpRunner().run(spec, lease)
    assert result.lease_id == lease.lease_id and result.target_id == lease.target_id
    return result


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A listener that never accepts and whose accept queue is full: new SYNs are dropped."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(c)
    try:
        yield port
    finally:
        for c in fillers:
            c.close()
        server.close()


async def test_open_port_is_up_with_timings(listener: int) -> None:
    result = await check("127.0.0.1", listener)
    assert result.status == "up"
    assert result.error is None
    assert result.details == {"address": "127.0.0.1"}
    t = result.timings
    assert t.dns_ms is None and t.connect_ms is not None and t.total_ms is not None
    assert result.latency_ms == t.total_ms
    assert result.started_at <= result.finished_at


async def test_hostname_is_resolved_and_timed(listener: int) -> None:
    result = await check("localhost", listener)
    assert result.status == "up"
    assert result.timings.dns_ms is not None
    assert result.details["address"] == "127.0.0.1"


async def test_refused_port_is_down() -> None:
    port = closed_port()
    result = await check("127.0.0.1", port)
    assert result.status == "down"
    assert result.error_code == "CONNECTION_REFUSED"
    assert result.error == f"connection refused by 127.0.0.1:{port}"
    assert result.timings.connect_ms is None


async def test_unanswered_connect_times_out(full_backlog: int) -> None:
    result = await check("127.0.0.1", full_backlog, timeout_ms=300)
    assert result.status == "down"
    assert result.error_code == "TIMEOUT"
    assert result.error == f"no connection to 127.0.0.1:{full_backlog} within 300 ms"


async def test_connects_without_the_loops_sock_connect(
    listener: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The address is resolved and judged once (``resolve_stream``); the connect must not hand
    it to ``loop.sock_connect``, which looks it up again (a tenth of a TCP check's CPU): every
    attempt goes through ``stream.connect``."""
    calls: list[tuple[object, ...]] = []

    async def spy(
        loop: asyncio.AbstractEventLoop, sock: socket.socket, sockaddr: tuple[object, ...]
    ) -> None:
        calls.append(sockaddr)
        await connect(loop, sock, sockaddr)

    monkeypatch.setattr(stream, "connect", spy)
    result = await check("127.0.0.1", listener)
    assert result.status == "up"
    port = closed_port()
    refused = await check("127.0.0.1", port)
    assert refused.error_code == "CONNECTION_REFUSED"
    assert calls == [("127.0.0.1", listener), ("127.0.0.1", port)]


async def test_connect_raises_the_connects_own_error() -> None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setblocking(False)
        with pytest.raises(ConnectionRefusedError):
            await connect(loop, sock, ("127.0.0.1", closed_port()))


async def test_a_cancelled_connect_stops_watching_its_socket(full_backlog: int) -> None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setblocking(False)
        pending = asyncio.ensure_future(connect(loop, sock, ("127.0.0.1", full_backlog)))
        await asyncio.sleep(0.05)
        assert not pending.done()
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        # Nothing watches the socket any more: removing a writer finds none.
        assert loop.remove_writer(sock.fileno()) is False
