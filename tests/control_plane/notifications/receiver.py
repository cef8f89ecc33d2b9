"""A local HTTP receiver that records every request and answers from a script: the stand-in for
Slack, Discord, PagerDuty, … speaking their protocol's answers (status, body, Retry-After)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    # When the request arrived (time.monotonic()).
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        import json

        return json.loads(self.body)


@dataclass
class Receiver:
    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    # (status, body, headers) answered in turn; the last one repeats.
    script: list[tuple[int, str, dict[str, str]]] = field(default_factory=lambda: [(200, "ok", {})])
    # Seconds to sleep before answering (a receiver that never answers in time).
    delay: float = 0.0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    # Set when the receiver shuts down: a delayed answer still waiting is released at once (the
    # caller has long given up; otherwise shutting down waits out every delay).
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    def answer(self, *script: tuple[int, str, dict[str, str]] | int) -> None:
        self.script = [s if isinstance(s, tuple) else (s, "", {}) for s in script]

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(
            Seen(
                request.method,
                request.path,
                dict(request.query),
                dict(request.headers),
                await request.read(),
            )
        )
        self.arrived.set()
        status, body, headers = self.script[min(len(self.seen) - 1, len(self.script) - 1)]
        if self.delay:
            try:
                await asyncio.wait_for(self.closing.wait(), self.delay)
            except TimeoutError:
                pass
        return web.Response(status=status, text=body, headers=headers)


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)

    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None and server.sockets
    port = server.sockets[0].getsockname()[1]
    rec.url = f"http://127.0.0.1:{port}"
    try:
        yield rec
    finally:
        rec.closing.set()
        await runner.cleanup()


@asynccontextmanager
async def threaded_receiver() -> AsyncIterator[Receiver]:
    """The same receiver on its own thread and event loop: for requests made from inside the
    app under ``AsyncTestClient``, whose transport blocks the test's loop while it waits."""
    import threading

    ready = threading.Event()
    box: dict[str, Any] = {}

    def serve() -> None:
        loop = asyncio.new_event_loop()
        box["loop"] = loop

        async def start() -> None:
            cm = receiver()
            box["cm"] = cm
            box["rec"] = await cm.__aenter__()
            box["stop"] = asyncio.Event()
            ready.set()
            await box["stop"].wait()
            await cm.__aexit__(None, None, None)

        loop.run_until_complete(start())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield box["rec"]
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(10)
