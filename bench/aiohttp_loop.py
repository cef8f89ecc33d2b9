"""The ceiling of our stack: a bare asyncio/aiohttp loop doing the agent's checks, a fresh
connection each, with nothing else (no leases, no results, no timings).

    python -m bench.aiohttp_loop [--rate R] http|https|tcp|names TARGET CONCURRENCY SECONDS [NAMES]

TARGET is a URL (http, https) or host:port (tcp); for ``names`` (the slow-dns variant) a URL
with ``{i}`` in its host, filled with 0 … NAMES-1 in turn, each request resolving its name
afresh (no DNS cache in the connector: the agent's names outlive their TTL between checks too).
Prints one JSON line: checks completed, failed
and the process's own CPU seconds over the measured window (after a short warm-up), and the
event loop it ran on. It runs as the agent does (issue 18: a ceiling that runs differently
flatters or belittles the agent): the same event loop (uvloop where installed) and the same GC
settings (``gc.freeze()`` and the larger first generation).

``--rate R`` offers at most R checks per second (0, the default: flat out). The agent runs at
the rate the control plane feeds it, a fraction of what the bare loop does flat out, and a
process's CPU per check moves with its rate (measured: TCP connects at 13.8k per CPU-second flat
out and 25k at 3,400/s; HTTP the other way, 7.5k and 6.3k), so the scenario also runs the loop
at the agent's own rate: per core against that is the like-for-like figure.
"""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import ssl
import sys
import time

import aiohttp

from probe_agent.checks import stream
from probe_agent.cli import run_loop, tune_gc

WARMUP_S = 0.5


async def _http_checks(
    session: aiohttp.ClientSession, url: str, tls: ssl.SSLContext | bool
) -> bool:
    async with session.get(url, ssl=tls) as resp:
        await resp.read()
        return resp.status == 200


async def _tcp_check(host: str, port: int) -> bool:
    """One TCP connect to an IP literal, made the way the agent makes it (``stream.connect``:
    the non-blocking connect awaited until writable). ``loop.sock_connect`` costs uvloop a
    ``getaddrinfo`` per call that the agent no longer pays, and a ceiling that connects more
    slowly than the agent is no ceiling (issue 18)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        await stream.connect(loop, sock, (host, port))
        return True
    finally:
        sock.close()


def url_for(target: str, names: int, n: int) -> str:
    """The ``n``-th request's URL: ``target`` as is, or its ``{i}`` filled (``names`` kind)."""
    return target.format(i=n % names) if names else target


class Pacer:
    """Starts at most ``rate`` checks per second, evenly spaced from ``start`` (0: no pacing)."""

    def __init__(self, rate: float, start: float) -> None:
        self.rate = rate
        self.start = start
        self.issued = 0

    def delay(self, now: float) -> float:
        """How long the next check waits before it starts (its slot taken)."""
        if self.rate <= 0:
            return 0.0
        at = self.start + self.issued / self.rate
        self.issued += 1
        return max(0.0, at - now)


async def main(
    kind: str, target: str, concurrency: int, seconds: float, names: int = 0, rate: float = 0.0
) -> dict[str, float | str]:
    tls: ssl.SSLContext | bool = False
    if kind == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        tls = ctx
    host, _, port = target.rpartition(":")
    # force_close: every request opens (and closes) its own connection.
    connector = aiohttp.TCPConnector(force_close=True, limit=0, use_dns_cache=kind != "names")
    sent = [0]
    counts = {"done": 0, "failed": 0}
    start = time.monotonic()
    measure_from = start + WARMUP_S
    stop_at = measure_from + seconds
    marks: dict[str, float] = {}
    pacer = Pacer(rate, start)

    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            while (now := time.monotonic()) < stop_at:
                wait = pacer.delay(now)
                if wait:
                    await asyncio.sleep(wait)
                    if (now := time.monotonic()) >= stop_at:
                        break
                if now >= measure_from and "cpu0" not in marks:
                    marks["cpu0"], marks["t0"] = time.process_time(), now
                try:
                    if kind == "tcp":
                        ok = await _tcp_check(host, int(port))
                    else:
                        sent[0] += 1
                        ok = await _http_checks(session, url_for(target, names, sent[0]), tls)
                except (aiohttp.ClientError, OSError, TimeoutError):
                    ok = False
                if time.monotonic() >= measure_from and "cpu0" in marks:
                    counts["done" if ok else "failed"] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu1, t1 = time.process_time(), time.monotonic()
    return {
        "loop": type(asyncio.get_running_loop()).__module__,
        "gc": f"threshold {gc.get_threshold()}, {gc.get_freeze_count()} frozen",
        "done": counts["done"],
        "failed": counts["failed"],
        "seconds": round(t1 - marks["t0"], 3),
        "cpu_s": round(cpu1 - marks["cpu0"], 3),
        "rate": rate,
    }


if __name__ == "__main__":
    argv = sys.argv[1:]
    rate_arg = 0.0
    if argv[:1] == ["--rate"]:
        rate_arg, argv = float(argv[1]), argv[2:]
    kind_arg, target_arg, conc_arg, secs_arg = argv[:4]
    names_arg = int(argv[4]) if len(argv) > 4 else 0
    tune_gc()
    out = run_loop(main(kind_arg, target_arg, int(conc_arg), float(secs_arg), names_arg, rate_arg))
    print(json.dumps(out))
