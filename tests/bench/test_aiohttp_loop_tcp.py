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
