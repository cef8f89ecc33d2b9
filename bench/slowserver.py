"""A loopback HTTP target that answers after a per-request delay (uniform between LO and HI
milliseconds), so the agent's concurrency limit shows up as it does against real sites.

    python -m bench.slowserver PORT LO_MS HI_MS
"""

from __future__ import annotations

import asyncio
import random
import sys

from aiohttp import web


def make_app(lo_ms: float, hi_ms: float) -> web.Application:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(random.uniform(lo_ms, hi_ms) / 1000)
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get("/{tail:.*}", slow)
    return app


async def serve(port: int, lo_ms: float, hi_ms: float) -> None:
    runner = web.AppRunner(make_app(lo_ms, hi_ms), access_log=None, handle_signals=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    print(f"slow: serving on 127.0.0.1:{port}, {lo_ms:g}-{hi_ms:g} ms", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    from probe_agent.cli import run_loop

    port_arg, lo_arg, hi_arg = sys.argv[1:4]
    run_loop(serve(int(port_arg), float(lo_arg), float(hi_arg)))
