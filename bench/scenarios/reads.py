"""Read API: p50/p99 latency of ``/results``, ``/uptime``, ``/latency`` and ``/incidents`` for a
target with 30 days of one-minute history (43,200 result rows written with COPY into daily
partitions, as a deployment 30 days old has them, rolled up per minute by the worker's rollup job
as it would have been, into the daily minute-rollup partitions the worker makes, plus one short
incident a day), under light concurrent load: ``BENCH_READS_CLIENTS`` aiohttp clients sharing
``BENCH_READS_REQUESTS`` requests per endpoint and run. Latency is measured by the client, over
keep-alive connections.

Not an empty database, not an idle one (issue 18): ``BENCH_READS_TARGETS`` other targets (60,000)
have ``BENCH_READS_HISTORY_MIN`` minutes of one-minute history each (written with SQL, rolled up
with the rest), and while the reads run a real agent checks all of them at 60 s against loopback
nginx with the worker on, so ingest (about targets/60 results/s) competes with the reads for
the API and PostgreSQL. The ingest rate achieved during the reads is reported next to them.
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
from bench.peers import Nginx
from bench.proc import cpu_between, sample, spread
from bench.report import Outcome
from bench.stack import Vigil
from control_plane.domain.results.rollups import run_rollups
from shared.checks import HttpCheck

DAYS = 30
RESULT_COLS = (
    "target_id, region_id, scheduled_at, org_id, status, started_at, finished_at, latency_ms, "
    "status_code, error, error_code, connect_ms, ttfb_ms"
)


FLEET_HISTORY = """
INSERT INTO results (target_id, region_id, scheduled_at, org_id, status, started_at, finished_at,
                     latency_ms, status_code, connect_ms, ttfb_ms)
SELECT t.id, 'default', m.at, t.org_id, 'up', m.at + interval '20 ms', m.at + interval '32 ms',
       12.0, 200, 0.3, 10.5
FROM targets t
CROSS JOIN generate_series(
    date_trunc('minute', now()) - make_interval(mins => %(minutes)s),
    date_trunc('minute', now()) - interval '1 minute',
    interval '1 minute') AS m(at)
WHERE t.id = ANY(%(ids)s)
"""
STORED = """
SELECT count(*) FROM results
WHERE finished_at >= %(t0)s AND finished_at < %(t1)s AND target_id <> %(history)s
"""
AGENT_CONCURRENCY = 100
INGEST_WARMUP_S = 15.0
INGEST_SETTLE_S = 5.0


async def _seed_fleet(
    vigil: Vigil, nginx: Nginx, org_id: uuid.UUID, n: int, minutes: int
) -> tuple[int, float]:
    """``n`` targets on nginx at 60 s with ``minutes`` of history each; (rows, seconds)."""
    t = time.monotonic()
    ids = await vigil.bulk_targets(org_id, [HttpCheck(url=nginx.url("http"))] * n, interval=60)
    rows = 0
    if minutes > 0:
        async with await psycopg.AsyncConnection.connect(vigil.db_url, autocommit=True) as conn:
            chunk = 5_000
            for i in range(0, len(ids), chunk):
                cur = await conn.execute(
                    FLEET_HISTORY, {"ids": ids[i : i + chunk], "minutes": minutes}
                )
                rows += cur.rowcount
            await conn.execute("ANALYZE results")
    return rows, time.monotonic() - t


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


async def run(vigil: Vigil, nginx: Nginx, cfg: BenchConfig) -> Outcome:
    out = Outcome(
        "reads",
        params={
            "history": f"{DAYS} days at 1 min",
            "other targets": f"{cfg.reads_targets} with {cfg.reads_history_min} min of history, "
            "checked at 60 s by a real agent with the worker on during the reads",
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
    if cfg.reads_targets > 0:
        fleet_rows, secs = await _seed_fleet(
            vigil, nginx, org_id, cfg.reads_targets, cfg.reads_history_min
        )
        out.notes.append(
            f"{cfg.reads_targets} other targets and {fleet_rows} results of their history "
            f"written in {secs:.1f} s"
        )
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
    names = ["api"]
    if cfg.reads_targets > 0:
        # Ingest at the same time: the real agent and worker on the other targets. The history
        # target itself stays as seeded (its port 9 would fail and open incidents mid-read).
        async with await psycopg.AsyncConnection.connect(vigil.db_url, autocommit=True) as conn:
            await conn.execute(
                "UPDATE schedules SET next_due_at = now() + interval '1 day' WHERE target_id = %s",
                (tid,),
            )
        vigil.start_worker()
        cap = str(AGENT_CONCURRENCY)
        vigil.start_agent(
            await vigil.agent_token("default", "reads"),
            "agent",
            ["--concurrency", cap, "--per-host-max-inflight", cap],
        )
        await asyncio.sleep(INGEST_WARMUP_S)
        names += ["worker", "agent"]
    pids = vigil.pids(*names)
    for path, params in endpoints.values():  # warm-up
        await _load(vigil.base_url, token, path, params, 2, 1)
    run_cpu: dict[str, list[float]] = {name: [] for name in [*names, "postgres"]}
    spans: list[tuple[datetime, datetime]] = []
    for _ in range(cfg.runs):
        start, t0 = sample(pids), datetime.now(UTC)
        for label, (path, params) in endpoints.items():
            a = sample(pids)
            lat = await _load(
                vigil.base_url, token, path, params, cfg.reads_requests, cfg.reads_clients
            )
            cpu = cpu_between(a, sample(pids))
            p50[label].append(_percentile(lat, 0.5))
            p99[label].append(_percentile(lat, 0.99))
            cpu_per_req[label].append(1000 * (cpu["api"] + cpu.get("postgres", 0.0)) / len(lat))
        whole, t1 = cpu_between(start, sample(pids)), datetime.now(UTC)
        for name in run_cpu:
            run_cpu[name].append(whole.get(name, 0.0))
        spans.append((t0, t1))
    ingest_rate: list[float] = []
    if cfg.reads_targets > 0:
        vigil.procs.check()
        # The agent posts in batches: what finished in a run is stored a moment later.
        await asyncio.sleep(INGEST_SETTLE_S)
        async with await psycopg.AsyncConnection.connect(vigil.db_url) as conn:
            for t0, t1 in spans:
                cur = await conn.execute(STORED, {"t0": t0, "t1": t1, "history": tid})
                row = await cur.fetchone()
                stored = int(row[0]) if row else 0
                ingest_rate.append(stored / (t1 - t0).total_seconds())
    for label in endpoints:
        out.add(f"{label} p50", p50[label], "ms")
        out.add(f"{label} p99", p99[label], "ms", target="< 50 ms", meets=lambda x: x < 50)
        out.add(f"{label} CPU per request (api+postgres)", cpu_per_req[label], "ms")
    if cfg.reads_targets > 0:
        out.add(
            f"ingest during the reads (agent on {cfg.reads_targets} targets, worker on)",
            ingest_rate,
            "results/s",
        )
        offered = cfg.reads_targets / 60
        if ingest_rate and min(ingest_rate) < 0.9 * offered:
            out.notes.append(
                f"ingest kept up with less than 90% of the {offered:,.0f}/s offered in some run: "
                "the reads ran with less write load than intended"
            )
    else:
        out.notes.append(
            "BENCH_READS_TARGETS=0: reads on an otherwise empty, idle database (flatters us)"
        )
    for name, values in run_cpu.items():
        out.cpu_s[name] = spread(values)
    return out
