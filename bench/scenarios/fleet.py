"""Fleet operations (issue 16): the target list with current status over a large org, and bulk
create.

Seeds ``BENCH_FLEET_TARGETS`` http targets (COPY, as the API stores them) in two regions, one
result per target and region as ingest leaves it (the result row, the schedule row's last
result, the evaluation's region state), 24 hours of hourly rollups per target and region and an
open incident on 1 % of them, and each target's last 24 h as the rollup job keeps them. Then:

- ``GET /api/v1/targets?limit=1000`` (default order, and ``sort=status``): p50/p95/p99 per run
  over ``BENCH_FLEET_REQUESTS`` (``BENCH_FLEET_SORT_REQUESTS`` for sort=status) requests from
  ``BENCH_READS_CLIENTS`` clients, measured by the client
  over keep-alive connections;
- ``GET /api/v1/dashboard/summary`` uncached: the org's 5 s cache entry is deleted before each
  request (outside the timed span), so every request computes the summary; one client,
  ``BENCH_FLEET_DASHBOARD_REQUESTS`` requests per run;
- ``POST /api/v1/targets/bulk`` of ``BENCH_FLEET_BULK`` http targets into a fresh org, wall time
  of the request, once per run (every run is reported).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import msgspec
import psycopg
from psycopg.rows import dict_row
from redis.asyncio import Redis

from bench.config import BenchConfig
from bench.proc import cpu_between, sample, spread
from bench.report import Outcome
from bench.stack import Vigil
from control_plane.domain.dashboard.in_flight import (
    FRESH_SECS,
    SNAPSHOT_EVERY_SECS,
    take_snapshot,
)
from control_plane.domain.dashboard.service import Q as DASHBOARD
from control_plane.domain.results.rollups import Q as ROLLUPS
from shared.checks import HttpCheck

REGIONS = ("default", "bench-eu")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


async def _seed(vigil: Vigil, org_id: uuid.UUID, n: int) -> None:
    ids = await vigil.bulk_targets(org_id, [HttpCheck(url="http://127.0.0.1:9/")] * n)
    async with await psycopg.AsyncConnection.connect(vigil.db_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO regions (id, name) VALUES (%s, 'Bench EU') ON CONFLICT DO NOTHING",
            (REGIONS[1],),
        )
        await conn.execute(
            "INSERT INTO target_regions (target_id, region_id) SELECT unnest(%s::uuid[]), %s",
            (ids, REGIONS[1]),
        )
        # One result per target and region, a minute ago; 2 % of them down.
        await conn.execute(
            "INSERT INTO results (target_id, region_id, scheduled_at, org_id, status, started_at,"
            " finished_at, latency_ms, status_code, error, error_code)"
            " SELECT s.target_id, s.region_id, date_trunc('minute', now()) - interval '1 minute',"
            "  %(org)s, CASE WHEN hashtext(s.target_id::text || s.region_id) %% 50 = 0"
            "  THEN 'down' ELSE 'up' END, now(), now(), 20 + random() * 100, 200, NULL, NULL"
            " FROM schedules s",
            {"org": org_id},
        )
        # What ingest keeps of it (the schedule row) and what the evaluation keeps.
        await conn.execute(
            "UPDATE schedules s SET last_at = r.scheduled_at, last_status = r.status,"
            " last_latency_ms = r.latency_ms, last_status_code = r.status_code"
            " FROM results r WHERE r.target_id = s.target_id AND r.region_id = s.region_id"
        )
        await conn.execute(
            "INSERT INTO region_states (target_id, region_id, consecutive_good, evaluated_to,"
            " last_reported_at, last_status, good_since)"
            " SELECT target_id, region_id, 1, scheduled_at, scheduled_at, status, scheduled_at"
            " FROM results"
        )
        await conn.execute(
            "INSERT INTO result_rollups_hourly (target_id, region_id, hour, org_id, total, up,"
            " down, degraded, error, missed, samples, latency_p50, latency_avg)"
            " SELECT s.target_id, s.region_id, h, %(org)s, 60, 59, 1, 0, 0, 0, 60, 50, 55"
            " FROM schedules s, generate_series(date_trunc('hour', now()) - interval '23 hours',"
            "  date_trunc('hour', now()), interval '1 hour') AS h",
            {"org": org_id},
        )
        # What the rollup job keeps of them per target (the reads' and the dashboard's last 24 h).
        await conn.execute(
            ROLLUPS.refresh_last_24h,
            {
                "since": datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
                - timedelta(hours=23),
                "ids": None,
            },
        )
        await conn.execute(
            "INSERT INTO incidents (id, org_id, target_id, started_at, status, cause, regions,"
            " check_count) SELECT gen_random_uuid(), %(org)s, t, now() - interval '5 minutes',"
            " 'down', 'expected status 200, got 503', '{default}', 2"
            " FROM unnest(%(ids)s::uuid[]) AS t WHERE hashtext(t::text) %% 100 = 0",
            {"org": org_id, "ids": ids},
        )
        for table in (
            "targets",
            "target_last_24h",
            "target_regions",
            "schedules",
            "results",
            "region_states",
            "result_rollups_hourly",
            "incidents",
        ):
            await conn.execute(f"VACUUM ANALYZE {table}")


async def _explain(db_url: str, org_id: uuid.UUID) -> list[str]:
    """The list statement's own time in PostgreSQL (EXPLAIN ANALYZE), apart from the API's: the
    statement the API runs (the page as one JSON array, ``json=True``), not the row form."""
    from control_plane.domain.targets.service import list_query
    from shared.checks import REDACTED, SECRET_HEADER_PREFIX

    params = {
        "org_id": org_id,
        "tag": None,
        "enabled": None,
        "q": None,
        "kind": None,
        "region": None,
        "status": None,
        "limit": 1000,
        "offset": 0,
        "redacted": REDACTED,
        "header_prefix": SECRET_HEADER_PREFIX,
    }
    notes = []
    # The session settings of the API's pool (db/pool.py): without ``jit=off`` the list
    # statement, planned just above PostgreSQL's JIT threshold, spends about 35 ms compiling in
    # EXPLAIN that it never spends in the API.
    async with await psycopg.AsyncConnection.connect(
        db_url, autocommit=True, options="-c jit=off -c timezone=UTC"
    ) as conn:
        for sort in (None, "status"):
            for _ in range(2):
                cur = await conn.execute(
                    "EXPLAIN (ANALYZE, FORMAT JSON) " + list_query(sort, json=True), params
                )
                plan = (await cur.fetchone())[0][0]  # type: ignore[index]
            notes.append(
                f"list statement (sort={sort or 'id'}) in PostgreSQL:"
                f" {plan['Execution Time']:.1f} ms execution, {plan['Planning Time']:.1f} ms"
                " planning (EXPLAIN ANALYZE, warm)"
            )
        # The worker's in-flight snapshot (every SNAPSHOT_EVERY_SECS), as the summary reads it.
        for _ in range(2):
            cur = await conn.execute(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + DASHBOARD.refresh_in_flight
            )
            plan = (await cur.fetchone())[0][0]  # type: ignore[index]
        notes.append(
            f"in-flight snapshot (worker, every {SNAPSHOT_EVERY_SECS} s) in PostgreSQL:"
            f" {plan['Execution Time']:.1f} ms execution (EXPLAIN ANALYZE, warm)"
        )
        # The dashboard summary's statement, and its parts (CTEs and sub-selects) by time, so
        # its p99 can be split into PostgreSQL's share and the rest.
        params = {"org_id": org_id, "fresh_secs": FRESH_SECS}
        for _ in range(2):
            cur = await conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + DASHBOARD.summary, params)
            plan = (await cur.fetchone())[0][0]  # type: ignore[index]
        parts = sorted(_subplans(plan["Plan"]), key=lambda p: -p[1])
        notes.append(
            f"dashboard summary statement in PostgreSQL: {plan['Execution Time']:.1f} ms"
            f" execution, {plan['Planning Time']:.1f} ms planning (EXPLAIN ANALYZE, warm); parts: "
            + ", ".join(f"{name} {ms:.1f} ms" for name, ms in parts)
        )
    return notes


def _subplans(node: dict[str, Any]) -> list[tuple[str, float]]:
    """Every named sub-plan (CTE, InitPlan, SubPlan) under ``node`` with its total time."""
    found = []
    if "Subplan Name" in node:
        found.append((node["Subplan Name"], node["Actual Total Time"] * node["Actual Loops"]))
    for child in node.get("Plans", []):
        found += _subplans(child)
    return found


async def _load(
    base: str, token: str, params: dict[str, str], requests: int, clients: int
) -> list[float]:
    latencies: list[float] = []
    left = [requests]

    async def client() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(headers=headers) as s:
            while left[0] > 0:
                left[0] -= 1
                t = time.perf_counter()
                async with s.get(base + "/api/v1/targets", params=params) as resp:
                    body = await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"GET /api/v1/targets: {resp.status} {body[:200]!r}")
                latencies.append(1000 * (time.perf_counter() - t))

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies


async def _dashboard_uncached(
    vigil: Vigil, token: str, org_id: uuid.UUID, requests: int
) -> list[float]:
    """Summary latencies with its cache entry deleted before each request (not timed)."""
    key = f"{vigil.env['VIGIL_REDIS_PREFIX']}dashboard:{org_id}"
    latencies: list[float] = []
    redis = Redis.from_url(vigil.env["VIGIL_REDIS_URL"])
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as s:
            for _ in range(requests):
                await redis.delete(key)
                t = time.perf_counter()
                async with s.get(vigil.base_url + "/api/v1/dashboard/summary") as resp:
                    body = await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"GET /dashboard/summary: {resp.status} {body[:200]!r}")
                latencies.append(1000 * (time.perf_counter() - t))
    finally:
        await redis.aclose()
    return latencies


async def _in_flight_snapshots(db_url: str) -> None:
    """The worker's in-flight snapshot job, every SNAPSHOT_EVERY_SECS, until cancelled (the
    bench runs no worker: its sweep would write missed slots for every seeded schedule)."""
    async with await psycopg.AsyncConnection.connect(
        db_url, autocommit=True, row_factory=dict_row
    ) as conn:
        while True:
            await take_snapshot(conn)
            await asyncio.sleep(SNAPSHOT_EVERY_SECS)


async def _bulk_once(vigil: Vigil, n: int, run: int) -> float:
    _, token = await vigil.org(f"Bulk {run}")
    body = {
        "targets": [
            {
                "name": f"bulk-{run}-{i}",
                "check": {"type": "http", "url": f"https://svc-{i}.example.com/health"},
                "interval": 60,
                "tags": ["bench", f"shard-{i % 16}"],
            }
            for i in range(n)
        ]
    }
    payload = msgspec.json.encode(body)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as s:
        t = time.perf_counter()
        async with s.post(
            vigil.base_url + "/api/v1/targets/bulk",
            data=payload,
            headers={"Content-Type": "application/json"},
        ) as resp:
            await resp.read()
            elapsed = time.perf_counter() - t
            if resp.status != 201:
                raise RuntimeError(f"POST /targets/bulk: {resp.status}")
    return elapsed


async def run(vigil: Vigil, cfg: BenchConfig) -> Outcome:
    n = cfg.fleet_targets
    out = Outcome(
        "fleet",
        params={
            "targets": n,
            "regions": len(REGIONS),
            "page": 1000,
            "clients": cfg.reads_clients,
            "requests per run": cfg.fleet_requests,
            "sort=status requests per run": cfg.fleet_sort_requests,
            "dashboard requests per run": cfg.fleet_dashboard_requests,
            "bulk size": cfg.fleet_bulk,
            "runs": cfg.runs,
        },
    )
    vigil.start_api()
    org_id, token = await vigil.org()
    t = time.monotonic()
    await _seed(vigil, org_id, n)
    out.notes.append(
        f"{n} targets x {len(REGIONS)} regions with a result each, 24 h of hourly rollups and"
        f" 1 % open incidents seeded in {time.monotonic() - t:.1f} s"
    )
    out.notes.extend(await _explain(vigil.db_url, org_id))
    pids = vigil.pids("api")
    lists = {
        "list limit=1000": {"limit": "1000"},
        "list limit=1000 sort=status": {"limit": "1000", "sort": "status"},
    }
    for params in lists.values():  # warm-up
        await _load(vigil.base_url, token, params, 3, 1)
    for label, params in lists.items():
        p50: list[float] = []
        p95: list[float] = []
        p99: list[float] = []
        cpu_ms: list[float] = []
        requests = cfg.fleet_sort_requests if "sort" in params else cfg.fleet_requests
        for _ in range(cfg.runs):
            a = sample(pids)
            lat = await _load(vigil.base_url, token, params, requests, cfg.reads_clients)
            cpu = cpu_between(a, sample(pids))
            p50.append(_percentile(lat, 0.5))
            p95.append(_percentile(lat, 0.95))
            p99.append(_percentile(lat, 0.99))
            cpu_ms.append(1000 * (cpu["api"] + cpu.get("postgres", 0.0)) / len(lat))
        out.add(f"{label} p50", p50, "ms")
        out.add(f"{label} p95", p95, "ms")
        if label == "list limit=1000":
            out.add(f"{label} p99", p99, "ms", target="< 50 ms", meets=lambda x: x < 50)
        else:
            out.add(f"{label} p99", p99, "ms")
        out.add(f"{label} CPU per request (api+postgres)", cpu_ms, "ms")
    snapshots = asyncio.create_task(_in_flight_snapshots(vigil.db_url))
    await _dashboard_uncached(vigil, token, org_id, 3)  # warm-up
    d50: list[float] = []
    d95: list[float] = []
    d99: list[float] = []
    for _ in range(cfg.runs):
        lat = await _dashboard_uncached(vigil, token, org_id, cfg.fleet_dashboard_requests)
        d50.append(_percentile(lat, 0.5))
        d95.append(_percentile(lat, 0.95))
        d99.append(_percentile(lat, 0.99))
    snapshots.cancel()
    out.add("dashboard summary uncached p50", d50, "ms")
    out.add("dashboard summary uncached p95", d95, "ms")
    out.add("dashboard summary uncached p99", d99, "ms", target="< 20 ms", meets=lambda x: x < 20)
    bulk: list[float] = []
    start = sample(pids)
    for i in range(cfg.runs):
        bulk.append(await _bulk_once(vigil, cfg.fleet_bulk, i))
    out.add(
        f"bulk create of {cfg.fleet_bulk} http targets",
        bulk,
        "s",
        target="< 3 s",
        meets=lambda x: x < 3,
    )
    out.notes.append("bulk create runs (s): " + ", ".join(f"{x:.2f}" for x in bulk))
    whole = cpu_between(start, sample(pids))
    for name in ("api", "postgres"):
        out.cpu_s[name] = spread([whole.get(name, 0.0)])
    return out
