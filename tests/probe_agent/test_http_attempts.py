"""An HTTP check makes exactly one attempt: what the target did to that one request is the
result. aiohttp, left to itself, sends an idempotent request again on a new connection when the
first is reset or closed, so a server that fails every other request would look up."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from typing import Literal

import pytest

from probe_agent.checks.http import HttpRunner
from shared.checks import HttpCheck
from tests.probe_agent.helpers import make_lease

Failure = Literal["reset", "close"]


class FailsFirst:
    """A TCP server that reads a request, then fails the first connection (a reset: SO_LINGER
    0, or a close without an answer) and answers 200 on every later one."""

    def __init__(self, failure: Failure) -> None:
        self.failure = failure
        self.accepted = 0
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        if self.accepted > 1:
            body = b"" if head.startswith(b"HEAD ") else b"ok"
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n" + body
            )
            await writer.drain()
            writer.close()
        elif self.failure == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        else:
            writer.close()


@pytest.fixture(params=["reset", "close"])
async def fails_first(request: pytest.FixtureRequest) -> AsyncIterator[FailsFirst]:
    server_state = FailsFirst(request.param)
    server = await asyncio.start_server(server_state.handle, "127.0.0.1", 0)
    server_state.port = server.sockets[0].getsockname()[1]
    try:
        yield server_state
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_a_failed_connection_is_reported_not_retried(
    fails_first: FailsFirst, method: Literal["GET", "HEAD"]
) -> None:
    spec = HttpCheck(url=f"http://127.0.0.1:{fails_first.port}/", method=method, timeout=3000)
    async with HttpRunner() as runner:
        result = await runner.run(spec, make_lease(spec))
    assert result.status == "down", result
    assert result.error_code == "CONNECTION_RESET", result
    assert result.status_code is None
    await asyncio.sleep(0.05)  # a retry would connect right away
    assert fails_first.accepted == 1
    # The same runner's next check is a new attempt, which this server answers.
    async with HttpRunner() as runner:
        again = await runner.run(spec, make_lease(spec))
    assert again.status == "up", again
    assert fails_first.accepted == 2
