"""The bare loop's TCP check connects as the agent does, so its figure stays a ceiling."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bench import aiohttp_loop
from probe_agent.checks import stream


@pytest.fixture
async def listener() -> AsyncIterator[int]:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield port


async def test_the_bare_tcp_check_uses_the_agents_connect(
    listener: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, ...]] = []
    real = stream.connect

    async def spy(loop: asyncio.AbstractEventLoop, sock: socket.socket, addr: Any) -> None:
        calls.append(addr)
        await real(loop, sock, addr)

    monkeypatch.setattr(stream, "connect", spy)
    assert await aiohttp_loop._tcp_check("127.0.0.1", listener)
    assert calls == [("127.0.0.1", listener)]


async def test_a_refused_connect_raises() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(ConnectionRefusedError):
        await aiohttp_loop._tcp_check("127.0.0.1", port)


def test_the_pacer_spaces_checks_evenly_from_the_start() -> None:
    pacer = aiohttp_loop.Pacer(100.0, start=10.0)
    # Slots at 10.00, 10.01, 10.02 …: asked at 10.0, each waits for its own.
    assert [round(pacer.delay(10.0), 6) for _ in range(3)] == [0.0, 0.01, 0.02]
    # Asked late, its slot is past: it starts at once (the slots are fixed, as an agent's are).
    assert pacer.delay(11.0) == 0.0
    assert aiohttp_loop.Pacer(0.0, start=0.0).delay(5.0) == 0.0


async def test_at_a_rate_the_loop_offers_that_rate_not_more(listener: int) -> None:
    """The like-for-like ceiling of the agent scenario: offered 200/s with 50 workers, the loop
    completes about 200 checks a second, where flat out it does many times that."""
    out = await aiohttp_loop.main("tcp", f"127.0.0.1:{listener}", 50, 1.0, rate=200.0)
    assert out["rate"] == 200.0 and out["failed"] == 0
    assert 150 <= int(out["done"]) / float(out["seconds"]) <= 260
