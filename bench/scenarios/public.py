"""Public status page: p50/p99 of the HTML page (``/status/{slug}``) and the JSON status
(``/api/public/v1/pages/{slug}/status``) of a page with ``COMPONENTS`` components and 90 days of
hourly rollups each, under ``BENCH_PUBLIC_CLIENTS`` (200) concurrent anonymous clients.

The clients run in this (the bench) process, the API in its own process (one uvicorn worker),
over loopback. Each client is a visitor: a request, then a pause of ``BENCH_PUBLIC_THINK_S``
(jittered ±50 %), new connection per client (keep-alive within it), for ``BENCH_PUBLIC_WINDOW_S``
seconds per run; then it stops by itself. Two phases per run and endpoint:

* **cold**: an operator edit invalidates the rendered cache, then all clients fire at once; the
  figure is over that first wave (one build, everyone else waits on it);
* **warm**: the steady state that follows (the window), from the rendered cache.

All clients share one loopback address, so the per-address public budget is switched off
(``VIGIL_PUBLIC_RATE_PER_MINUTE=0``); the in-flight cap stays at its default, and every answer
other than 200 is counted and reported. The machine is shared: the report carries the load
average (``uptime``) before and after every run.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import psycopg

from bench.config import BenchConfig, _float, _int
from bench.proc import cpu_between, sample
from bench.report import Outcome
from bench.stack import Vigil

COMPONENTS = 50
DAYS = 90


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def _seed_rollups(db_url: str, org_id: uuid.UUID, ids: list[str]) -> int:
    rng = random.Random(14)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    first = now - timedelta(days=DAYS)
    rows = 0
    cols = (
        "target_id, region_id, hour, org_id, total, up, down, degraded, error, missed, samples, "
        "latency_p50, latency_p95, latency_p99, latency_avg"
    )
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        async with (
            conn.cursor() as cur,
            cur.copy(f"COPY result_rollups_hourly ({cols}) FROM STDIN") as cp,
        ):
            for tid in ids:
                for h in range(DAYS * 24):
                    down = 1 if rng.random() < 0.02 else 0
                    p50 = rng.uniform(20, 200)
                    await cp.write_row(
                        (
                            tid,
                            "default",
                            first + timedelta(hours=h),
                            org_id,
                            60,
                            60 - down,
                            down,
                            0,
                            0,
                            0,
                            60,
                            p50,
                            p50 * 2,
                            p50 * 3,
                            p50,
                        )
                    )
                    rows += 1
        await conn.execute("ANALYZE result_rollups_hourly")
    return rows


async def _wave(
    base: str, path: str, clients: int, think: float, window: float
) -> dict[str, list[Any]]:
    """Every client fires at once (the cold wave), then visits until ``window`` ends."""
    cold: list[float] = []
    warm: list[float] = []
    bad: list[int] = []
    start = asyncio.Event()
    end = [0.0]

    async def client() -> None:
        async with aiohttp.ClientSession() as s:
            await start.wait()
            first = True
            while first or time.monotonic() < end[0]:
                t = time.perf_counter()
                async with s.get(base + path) as resp:
                    await resp.read()
                    status = resp.status
                ms = 1000 * (time.perf_counter() - t)
                if status != 200:
                    bad.append(status)
                else:
                    (cold if first else warm).append(ms)
                first = False
                await asyncio.sleep(think * random.uniform(0.5, 1.5))

    tasks = [asyncio.ensure_future(client()) for _ in range(clients)]
    await asyncio.sleep(0.5)  # every session open before the wave
    end[0] = time.monotonic() + window
    start.set()
    await asyncio.gather(*tasks)
    return {"cold": cold, "warm": warm, "bad": bad}


async def run(vigil: Vigil, cfg: BenchConfig) -> Outcome:
    clients = _int("BENCH_PUBLIC_CLIENTS", 200)
    think = _float("BENCH_PUBLIC_THINK_S", 0.5)
    window = _float("BENCH_PUBLIC_WINDOW_S", 20.0)
    out = Outcome(
        "public",
        params={
            "components": COMPONENTS,
            "history": f"{DAYS} days of hourly rollups per component",
            "clients": clients,
            "think time per client": f"{think} s ±50 %",
            "window per run and endpoint": f"{window} s",
            "runs": cfg.runs,
            "api": "one uvicorn process; clients in the bench process, loopback",
        },
    )
    vigil.env["VIGIL_PUBLIC_RATE_PER_MINUTE"] = "0"
    vigil.start_api()
    org_id, token = await vigil.org()
    page = await vigil.call(
        "POST",
        "/api/v1/status-pages",
        token,
        {"name": "Bench status", "slug": "bench", "published": True},
    )
    ids = []
    for n in range(COMPONENTS):
        t = await vigil.call(
            "POST",
            "/api/v1/targets",
            token,
            {"name": f"svc-{n}", "check": {"type": "http", "url": "http://127.0.0.1:9/"}},
        )
        ids.append(t["id"])
        await vigil.call(
            "POST",
            f"/api/v1/status-pages/{page['id']}/components",
            token,
            {"target_id": t["id"], "public_group": f"Group {n % 5}"},
        )
    t0 = time.monotonic()
    rows = await _seed_rollups(vigil.db_url, org_id, ids)
    out.notes.append(f"{rows} hourly rollups written in {time.monotonic() - t0:.1f} s")
    endpoints = {
        "HTML /status/bench": "/status/bench",
        "JSON /api/public/v1/pages/bench/status": "/api/public/v1/pages/bench/status",
    }
    figs: dict[str, dict[str, list[float]]] = {
        k: {
            "cold p50": [],
            "cold p99": [],
            "warm p50": [],
            "warm p99": [],
            "warm rps": [],
            "cpu": [],
        }
        for k in endpoints
    }
    pids = vigil.pids("api")
    for n in range(cfg.runs):
        for label, path in endpoints.items():
            # An operator edit: the rendered answers are invalidated, the next wave is cold.
            await vigil.call(
                "PATCH",
                f"/api/v1/status-pages/{page['id']}",
                token,
                {"description": f"run {n} {label}"},
            )
            before = _load()
            a = sample(pids)
            got = await _wave(vigil.base_url, path, clients, think, window)
            cpu = cpu_between(a, sample(pids))
            if not got["cold"] or not got["warm"]:
                raise RuntimeError(f"{label}: no successful answers ({got['bad'][:5]})")
            f = figs[label]
            f["cold p50"].append(_percentile(got["cold"], 0.5))
            f["cold p99"].append(_percentile(got["cold"], 0.99))
            f["warm p50"].append(_percentile(got["warm"], 0.5))
            f["warm p99"].append(_percentile(got["warm"], 0.99))
            f["warm rps"].append(len(got["warm"]) / window)
            answers = len(got["cold"]) + len(got["warm"]) + len(got["bad"])
            f["cpu"].append(1000 * cpu.get("api", 0.0) / answers)
            out.notes.append(
                f"run {n + 1} {label}: cold p50/p99 {f['cold p50'][-1]:.1f}/"
                f"{f['cold p99'][-1]:.1f} ms, warm p50/p99 {f['warm p50'][-1]:.1f}/"
                f"{f['warm p99'][-1]:.1f} ms over {len(got['warm'])} answers "
                f"({f['warm rps'][-1]:.0f}/s), non-200: {len(got['bad'])} "
                f"{sorted(set(got['bad']))}, api CPU {cpu.get('api', 0.0):.1f} s; "
                f"load average before {before}, after {_load()}"
            )
    for label in endpoints:
        f = figs[label]
        out.add(f"{label} cold wave p50", f["cold p50"], "ms")
        out.add(f"{label} cold wave p99", f["cold p99"], "ms")
        out.add(f"{label} warm p50", f["warm p50"], "ms")
        out.add(f"{label} warm p99", f["warm p99"], "ms", target="< 50 ms", meets=lambda x: x < 50)
        out.add(f"{label} warm answers per second", f["warm rps"], "req/s")
        # The figure the machine's load does not move much: what one answer costs the API.
        out.add(f"{label} API CPU per answer", f["cpu"], "ms")
    out.notes.append("Each run's load average is listed above: read the figures with it.")
    return out
