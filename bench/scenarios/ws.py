"""WebSocket fan-out: ``BENCH_WS_CLIENTS`` (1,000) clients connected to one API process's
``/api/ws``, subscribed to ``monitor.status``, in a separate client process; ``BENCH_WS_EVENTS``
status changes published one per ``BENCH_WS_GAP_S`` seconds through Redis the way the worker's
evaluation publishes them (``events.stream.publish``). Per client and event: publish → receipt
(one clock: same machine). Reported: p50/p99 over every (client, event), per-run p99, how many
clients got every event, and the load average before and after.

The client process: ``python -m bench.scenarios.ws <url> <token> <clients>``; it prints
``READY`` once every client is subscribed, then one JSON line of latencies when stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import aiohttp
from redis.asyncio import Redis

from bench.config import BenchConfig
from bench.report import Outcome
from bench.stack import Vigil
from control_plane.domain.events.stream import publish
from control_plane.settings import RedisSettings

CLIENTS = int(os.environ.get("BENCH_WS_CLIENTS", "1000"))
EVENTS = int(os.environ.get("BENCH_WS_EVENTS", "10"))
GAP_S = float(os.environ.get("BENCH_WS_GAP_S", "1.0"))
CONNECT_BATCH = 100
READY_S = 120.0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _clients(url: str, token: str, n: int) -> None:
    """The client process: ``n`` sockets, each recording (event n, publish → receipt)."""
    got: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        sockets: list[aiohttp.ClientWebSocketResponse] = []

        async def connect() -> aiohttp.ClientWebSocketResponse:
            ws = await http.ws_connect(url, heartbeat=None, max_msg_size=0)
            await ws.send_json({"auth": token, "subscribe": ["monitor.status"]})
            hello = await ws.receive_json(timeout=60)
            assert hello.get("type") == "subscribed", hello
            return ws

        for start in range(0, n, CONNECT_BATCH):
            sockets += await asyncio.gather(
                *(connect() for _ in range(start, min(n, start + CONNECT_BATCH)))
            )

        async def read(i: int, ws: aiohttp.ClientWebSocketResponse) -> None:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                at = time.time()
                data = json.loads(msg.data)["data"]
                got[i].append((int(data["n"]), at - float(data["sent_at"])))

        readers = [asyncio.create_task(read(i, ws)) for i, ws in enumerate(sockets)]
        print("READY", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # the bench closes stdin when done
        for ws in sockets:
            await ws.close()
        for t in readers:
            t.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    print(json.dumps(got), flush=True)


async def run(vigil: Vigil, cfg: BenchConfig) -> Outcome:
    out = Outcome(
        "ws",
        params={"clients": CLIENTS, "events": EVENTS, "gap_s": GAP_S, "api processes": 1},
    )
    vigil.start_api()
    org_id, token = await vigil.org()
    url = vigil.base_url.replace("http://", "ws://") + "/api/ws"
    load_before = os.getloadavg()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.scenarios.ws",
        url,
        token,
        str(CLIENTS),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=vigil.env,
        limit=2**26,
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), READY_S)
        if line.strip() != b"READY":
            raise RuntimeError(f"the client process did not get ready: {line!r}")
        connected_at = time.monotonic()
        settings = RedisSettings(
            url=vigil.env["VIGIL_REDIS_URL"], prefix=vigil.env["VIGIL_REDIS_PREFIX"]
        )
        async with Redis.from_url(settings.url) as redis:
            await asyncio.sleep(1.0)
            for n in range(EVENTS):
                data = {"n": n, "sent_at": time.time(), "target_id": "bench", "status": "down"}
                await publish(redis, settings, org_id, "monitor.status", data)
                await asyncio.sleep(GAP_S)
        await asyncio.sleep(2.0)
        load_after = os.getloadavg()
        proc.stdin.close()
        raw = await asyncio.wait_for(proc.stdout.readline(), 120)
        got: list[list[list[float]]] = json.loads(raw)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
    lat = [x[1] for client in got for x in client]
    per_event: dict[int, list[float]] = {}
    for client in got:
        for event_n, secs in client:
            per_event.setdefault(int(event_n), []).append(secs)
    complete = sum(1 for client in got if len({int(x[0]) for x in client}) == EVENTS)
    out.add(
        "publish → receipt, p50 over all (client, event)",
        [_pct(lat, 0.50)],
        "s",
    )
    out.add(
        "publish → receipt, p99 over all (client, event)",
        [_pct(lat, 0.99)],
        "s",
        target="p99 < 1 s",
        meets=lambda x: x < 1.0,
    )
    out.add(
        "publish → receipt, p99 of each event (runs)",
        [_pct(v, 0.99) for _, v in sorted(per_event.items())],
        "s",
    )
    out.add("clients that received every event", [complete], f"of {CLIENTS}")
    out.notes.append(
        f"load average (1/5/15 min) before: {' '.join(f'{x:.2f}' for x in load_before)};"
        f" after: {' '.join(f'{x:.2f}' for x in load_after)}"
    )
    out.notes.append(
        f"{len(lat)} receipts of {CLIENTS * EVENTS} expected; clients held for"
        f" {time.monotonic() - connected_at:.0f} s. Events are published to Redis as the"
        " worker's evaluation publishes them; the clients run in their own process, on the"
        " same machine as the API, Redis and PostgreSQL."
    )
    return out


def _main(argv: list[str]) -> None:
    url, token, n = argv[0], argv[1], int(argv[2])
    asyncio.run(_clients(url, token, n))


if __name__ == "__main__":
    _main(sys.argv[1:])
