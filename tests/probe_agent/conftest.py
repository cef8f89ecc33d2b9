"""Real servers on 127.0.0.1 for agent tests: an HTTP(S) target that records every request the
agent sends, a TCP listener that counts the connections it accepts, and a record of every
``socket.connect`` this process makes (so "never connected" means zero attempts)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.probe_agent.helpers import self_signed_server_context


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int]
    # Every User-Agent header the request carried (``headers`` keeps one per name).
    user_agents: tuple[str, ...] = ()


class Target:
    """Routes: /ok, /status/{code}[?retry_after=…], /echo, /redirect/{n}, /slow, /big."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.release = asyncio.Event()
        self.server: TestServer | None = None

    def url(self, path: str) -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_route("*", "/ok", self._ok)
        app.router.add_route("*", "/echo", self._ok)
        app.router.add_get("/status/{code}", self._status)
        app.router.add_get("/redirect/{n}", self._redirect)
        app.router.add_get("/slow", self._slow)
        app.router.add_get("/big", self._big)
        return app

    @web.middleware
    async def _record(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.received.append(
            Received(
                method=request.method,
                path=request.path,
                headers=dict(request.headers),
                body=await request.read(),
                peer=(peer[0], peer[1]) if peer else ("", 0),
                user_agents=tuple(request.headers.getall("User-Agent", ())),
            )
        )
        return await handler(request)

    async def _ok(self, request: web.Request) -> web.Response:
        return web.Response(text="hello from the target: all systems operational")

    async def _status(self, request: web.Request) -> web.Response:
        headers = {}
        if "retry_after" in request.query:
            headers["Retry-After"] = request.query["retry_after"]
        return web.Response(status=int(request.match_info["code"]), headers=headers, text="x")

    async def _redirect(self, request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if n == 0:
            return web.Response(text="landed")
        raise web.HTTPFound(f"/redirect/{n - 1}")

    async def _slow(self, request: web.Request) -> web.Response:
        await self.release.wait()
        return web.Response(text="too late")

    async def _big(self, request: web.Request) -> web.Response:
        return web.Response(body=b"a" * 4096 + b"NEEDLE")


async def _serve(target: Target, ssl_context: object = None) -> TestServer:
    server = TestServer(target.app(), host="127.0.0.1")
    if ssl_context is None:
        await server.start_server()
    else:
        await server.start_server(ssl=ssl_context)
    target.server = server
    return server


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    t = Target()
    server = await _serve(t)
    try:
        yield t
    finally:
        t.release.set()
        await server.close()


@pytest.fixture
async def tls_target(tmp_path: Path) -> AsyncIterator[Target]:
    t = Target()
    server = await _serve(t, self_signed_server_context(tmp_path))
    try:
        yield t
    finally:
        t.release.set()
        await server.close()


# --- observing connection attempts -------------------------------------------------------------

_recorders: list[list[Any]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _recorders and event == "socket.connect":
        for recorder in _recorders:
            recorder.append(args[1])


sys.addaudithook(_audit)  # audit hooks cannot be removed; it records only while a test looks


@pytest.fixture
def connects() -> Iterator[list[Any]]:
    """Every address this process calls ``socket.connect`` on while the test runs."""
    recorder: list[Any] = []
    _recorders.append(recorder)
    try:
        yield recorder
    finally:
        _recorders.remove(recorder)


class Listener:
    """A TCP listener on 127.0.0.1 that counts the connections it accepts (and drops them)."""

    def __init__(self) -> None:
        self.accepted = 0
        self.port = 0

    async def _handle(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.close()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    lst = Listener()
    server = await asyncio.start_server(lst._handle, "127.0.0.1", 0)
    lst.port = server.sockets[0].getsockname()[1]
    try:
        yield lst
    finally:
        server.close()
        await server.wait_closed()
