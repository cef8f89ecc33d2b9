"""Read API: p50/p99 latency of ``/results``, ``/uptime``, ``/latency`` and ``/incidents`` for a
target with 30 days of one-minute history (43,200 result rows written with COPY into daily
partitions, as a deployment 30 days old has them, rolled up per minute by the worker's rollup job
as it would have been, into the daily minute-rollup partitions the worker makes, plus one short
incident a day), under light concurrent load: ``BENCH_READS_CLIENTS`` aiohttp clients sharing
``BENCH_READS_REQUESTS`` requests per endpoint and run. Latency is measured by the client, over
keep-alive connections.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import psycopg
from psycopg.rows import dict_row

from bench.config import BenchConfig
from bench.proc import cpu_between, sample, spread
from bench.report import Outcome
from bench.stack import Vigil
from control_plane.domain.results.rollups import run_rollups

DAYS = 30
RESULT_COLS = (
    "target_id, region_id, scheduled_at, org_id, status, started_at, finished_at, latency_ms, "
    "status_code, error, error_code, connect_ms, ttfb_ms"
)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


async def _rollup(db_url: str) -> int:
    """What the worker's rollup job would have done over those 30 days: one backfill run."""
    async with await psycopg.AsyncConnection.connect(
        db_url, autocommit=True, row_factory=dict_row
    ) as conn:
        run = await run_rollups(conn)
        await conn.execute("ANALYZE result_rollups")
    if not run.advanced:
        raise RuntimeError("rollup watermark held back: the seeded schedule is overdue")
    return run.rows_written


async def _seed(db_url: str, org_id: uuid.UUID, target_id: uuid.UUID) -> int:
    rng = random.Random(7)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    first = now - timedelta(days=DAYS)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "SELECT vigil_ensure_result_partitions((now() AT TIME ZONE 'UTC')::date - %s, %s)",
            (DAYS + 1, DAYS + 2),
        )
        # The worker makes the minute-rollup partitions of the same days.
        await conn.execute(
            "SELECT vigil_ensure_rollup_partitions((now() AT TIME ZONE 'UTC')::date - %s, %s)",
            (DAYS + 1, DAYS + 2),
        )
        rows = 0
        async with conn.cursor() as cur, cur.copy(f"COPY results ({RESULT_COLS}) FROM STDIN") as cp:
            for minute in range(DAYS * 24 * 60):
                at = first + timedelta(minutes=minute)
                down = rng.random() < 0.01
                latency = rng.uniform(20, 200)
                await cp.write_row(
                    (
                        target_id,
                        "default",
                        at,
                        org_id,
                        "down" if down else "up",
                        at + timedelta(milliseconds=30),
                        at + timedelta(milliseconds=30 + latency),
                        latency,
                        503 if down else 200,
                        "expected status 200, got 503" if down else None,
                        "UNEXPECTED_STATUS" if down else None,
                        latency * 0.2,
                        latency * 0.7,
                    )
                )
                rows += 1
        for day in range(DAYS):
            start = first + timedelta(days=day, hours=rng.randrange(24))
            await conn.execute(
                "INSERT INTO incidents (id, org_id, target_id, started_at, ended_at, status, "
                "cause, regions, check_count, opened_at, closed_at) VALUES "
                "(%s, %s, %s, %s, %s, 'down', 'expected status 200, got 503', '{default}', 3, "
                "%s, %s)",
                (
                    uuid.uuid4(),
                    org_id,
                    target_id,
                    start,
                    start + timedelta(minutes=5),
                    start,
                    start + timedelta(minutes=5),
                ),
            )
        await conn.execute("ANALYZE results")
        await conn.execute("ANALYZE incidents")
    return rows


async def _load(
    base: str, token: str, path: str, params: dict[str, str], requests: int, clients: int
) -> list[float]:
    latencies: list[float] = []
    left = [requests]

    async def client() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(headers=headers) as s:
            while left[0] > 0:
                left[0] -= 1
                t = time.perf_counter()
                async with s.get(base + path, params=params) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"GET {path}: {resp.status}")
                latencies.append(1000 * (time.perf_counter() - t))

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies


async def run(vigil: Vigil, cfg: BenchConfig) -> Outcome:
    out = Outcome(
        "reads",
        params={
            "history": f"{DAYS} days at 1 min",
            "clients": cfg.reads_clients,
            "requests per endpoint and run": cfg.reads_requests,
            "runs": cfg.runs,
        },
    )
    vigil.start_api()
    org_id, token = await vigil.org()
    target = await vigil.call(
        "POST",
        "/api/v1/targets",
        token,
        {
            "name": "history",
            "check": {"type": "http", "url": "http://127.0.0.1:9/"},
            "interval": 60,
        },
    )
    tid = target["id"]
    t = time.monotonic()
    rows = await _seed(vigil.db_url, org_id, uuid.UUID(tid))
    out.notes.append(f"{rows} results and {DAYS} incidents written in {time.monotonic() - t:.1f} s")
    t = time.monotonic()
    minutes = await _rollup(vigil.db_url)
    out.notes.append(f"{minutes} minute rollups written in {time.monotonic() - t:.1f} s")
    month = (datetime.now(UTC) - timedelta(days=DAYS)).strftime("%Y-%m-%dT%H:%M:%SZ")
    endpoints = {
        "/results (last 24 h, limit 100)": (f"/api/v1/targets/{tid}/results", {"limit": "100"}),
        "/results (last 24 h, default limit 1000)": (f"/api/v1/targets/{tid}/results", {}),
        "/uptime (30 days)": (f"/api/v1/targets/{tid}/uptime", {"from": month}),
        "/latency (last 24 h)": (f"/api/v1/targets/{tid}/latency", {}),
        "/latency (30 days)": (f"/api/v1/targets/{tid}/latency", {"from": month}),
        "/latency/by-region (30 days)": (
            f"/api/v1/targets/{tid}/latency/by-region",
            {"from": month},
        ),
        "/incidents (30 days)": (f"/api/v1/targets/{tid}/incidents", {"from": month}),
    }
    p50: dict[str, list[float]] = {k: [] for k in endpoints}
    p99: dict[str, list[float]] = {k: [] for k in endpoints}
    cpu_per_req: dict[str, list[float]] = {k: [] for k in endpoints}
    pids = vigil.pids("api")
    for path, params in endpoints.values():  # warm-up
        await _load(vigil.base_url, token, path, params, 2, 1)
    run_cpu: dict[str, list[float]] = {"api": [], "postgres": []}
    for _ in range(cfg.runs):
        start = sample(pids)
        for label, (path, params) in endpoints.items():
            a = sample(pids)
            lat = await _load(
                vigil.base_url, token, path, params, cfg.reads_requests, cfg.reads_clients
            )
            cpu = cpu_between(a, sample(pids))
            p50[label].append(_percentile(lat, 0.5))
            p99[label].append(_percentile(lat, 0.99))
            cpu_per_req[label].append(1000 * (cpu["api"] + cpu.get("postgres", 0.0)) / len(lat))
        whole = cpu_between(start, sample(pids))
        for name in run_cpu:
            run_cpu[name].append(whole.get(name, 0.0))
    for label in endpoints:
        out.add(f"{label} p50", p50[label], "ms")
        out.add(f"{label} p99", p99[label], "ms", target="< 50 ms", meets=lambda x: x < 50)
        out.add(f"{label} CPU per request (api+postgres)", cpu_per_req[label], "ms")
    for name, values in run_cpu.items():
        out.cpu_s[name] = spread(values)
    return out
