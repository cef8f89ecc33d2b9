"""Ingest: results per second that ``/api/agent/ingest`` stores in batches of 1,000, against a
raw ``COPY`` of the same rows into the same ``results`` table of the same PostgreSQL.

A run: make every slot of ``BENCH_INGEST_ROWS`` targets due (at one time per run), lease them
all through ``/api/agent/lease`` (timed too), encode one result per lease in batches of 1,000
(before the clock starts), post them ``BENCH_INGEST_CONCURRENCY`` at a time. Then the stored
rows are read back with ``COPY … TO STDOUT``, deleted, and written again with ``COPY … FROM
STDIN``: the database's raw rate for exactly those rows. No worker runs (evaluation jobs wait in
Redis), so the API and PostgreSQL have the machine to themselves.

Row writes per steady check (issue 18): every target's region starts as the evaluation leaves a
steady one (``up``, not failing, its good run at the confirmations, evaluated before the first
run's slot), and the runs' slots go forward in time, so each result is a steady check: the
common case of a running system. The figure is the delta of ``n_tup_ins + n_tup_upd +
n_tup_del`` over every table of ``pg_stat_user_tables`` across the lease and ingest calls (not
the bench's own set-up writes), divided by the results stored; the statistics are read once
every backend has reported them (they are flushed when a backend goes idle).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import msgspec
import psycopg

from bench.config import BenchConfig
from bench.proc import cpu_between, sample, spread
from bench.report import Outcome
from bench.stack import Vigil
from shared.checks import HttpCheck
from shared.protocol import MAX_INGEST_BATCH, MAX_LEASE_BATCH

BATCH = MAX_INGEST_BATCH
INGEST_INTERVAL = 3600
COLS = (
    "target_id, region_id, scheduled_at, org_id, agent_id, status, started_at, finished_at, "
    "latency_ms, status_code, error, error_code, dns_ms, connect_ms, tls_ms, ttfb_ms, details, "
    "received_at"
)
# The region of every target as the evaluation leaves a steady one (see the docstring).
STEADY_STATES = """
INSERT INTO region_states (target_id, region_id, consecutive_bad, consecutive_good, failing,
                           evaluated_to, last_reported_at, last_status, good_since, failing_hard)
SELECT s.target_id, s.region_id, 0, t.alert_confirmations, false, %(at)s, %(at)s, 'up', %(at)s,
       false
FROM schedules s JOIN targets t ON t.id = s.target_id
WHERE s.region_id = 'default'
ON CONFLICT DO NOTHING
"""
# Longer than a backend may hold its table statistics once idle (PGSTAT_IDLE_INTERVAL, 10 s).
SETTLE_S = 11.0
TABLE_WRITES = """
SELECT relname, n_tup_ins + n_tup_upd + n_tup_del AS n FROM pg_stat_user_tables
"""
MAKE_DUE = """
UPDATE schedules SET next_due_at = %(at)s, leased_by = NULL, lease_expires_at = NULL
WHERE region_id = 'default'
"""


async def _lease_all(session: aiohttp.ClientSession, url: str, want: int) -> list[dict[str, Any]]:
    leases: list[dict[str, Any]] = []
    while len(leases) < want:
        body = {"max": min(MAX_LEASE_BATCH, want - len(leases)), "wait_ms": 0}
        async with session.post(url + "/api/agent/lease", json=body) as resp:
            got = msgspec.json.decode(await resp.read())
            if resp.status != 200:
                raise RuntimeError(f"lease: {resp.status} {got}")
        if not got["leases"]:
            break
        leases.extend(got["leases"])
    return leases


def _bodies(leases: list[dict[str, Any]]) -> list[bytes]:
    now = datetime.now(UTC)
    started, finished = now.isoformat(), (now + timedelta(milliseconds=12)).isoformat()
    results = [
        {
            "lease_id": lease["lease_id"],
            "target_id": lease["target_id"],
            "scheduled_at": lease["scheduled_at"],
            "started_at": started,
            "finished_at": finished,
            "status": "up",
            "latency_ms": 12.0,
            "status_code": 200,
            "timings": {"connect_ms": 0.3, "ttfb_ms": 10.5, "total_ms": 12.0},
        }
        for lease in leases
    ]
    return [
        msgspec.json.encode({"results": results[i : i + BATCH]})
        for i in range(0, len(results), BATCH)
    ]


async def _post_all(
    session: aiohttp.ClientSession, url: str, bodies: list[bytes], concurrency: int
) -> tuple[int, int]:
    queue = list(reversed(bodies))
    totals = {"accepted": 0, "rejected": 0}

    async def poster() -> None:
        while queue:
            body = queue.pop()
            async with session.post(
                url + "/api/agent/ingest",
                data=body,
                headers={"Content-Type": "application/json"},
            ) as resp:
                got = msgspec.json.decode(await resp.read())
                if resp.status != 200:
                    raise RuntimeError(f"ingest: {resp.status} {got}")
            totals["accepted"] += got["accepted"]
            totals["rejected"] += len(got["rejected"])

    await asyncio.gather(*(poster() for _ in range(concurrency)))
    return totals["accepted"], totals["rejected"]


async def _table_writes(db_url: str) -> dict[str, int]:
    """Rows written so far per table (a partition under its own name), as reported."""
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        rows = await (await conn.execute(TABLE_WRITES)).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


async def _settled_writes(db_url: str, at_least: int = 0, base: int = 0) -> dict[str, int]:
    """``_table_writes`` once every backend has flushed its statistics: the total has not moved
    for ``SETTLE_S`` (and is at least ``at_least`` past ``base``); at most a minute. A backend
    that goes idle within a second of its last report waits up to 10 s to report again (PG 15's
    idle interval): with 3 s, one run counted 2.6 writes a check and the next 3.4."""
    last: dict[str, int] = {}
    stable_since = time.monotonic()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = await _table_writes(db_url)
        if sum(now.values()) != sum(last.values()):
            last, stable_since = now, time.monotonic()
        elif time.monotonic() - stable_since >= SETTLE_S and sum(last.values()) - base >= at_least:
            break
        await asyncio.sleep(0.5)
    return last


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """Per table (partitions of ``results`` as one), the rows written between two readings."""
    out: dict[str, int] = {}
    for name, n in after.items():
        d = n - before.get(name, 0)
        if d:
            key = "results" if name.startswith("results") else name
            out[key] = out.get(key, 0) + d
    return out


async def _copy_rate(db_url: str, slot: datetime) -> tuple[int, float]:
    """Read the run's rows out with COPY, delete them, COPY them back in; (rows, seconds)."""
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        data = bytearray()
        query = f"COPY (SELECT {COLS} FROM results WHERE scheduled_at = %s) TO STDOUT"
        async with conn.cursor() as cur, cur.copy(query, (slot,)) as copy:
            async for chunk in copy:
                data += chunk
        deleted = (
            await conn.execute("DELETE FROM results WHERE scheduled_at = %s", (slot,))
        ).rowcount
        started = time.perf_counter()
        async with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy(f"COPY results ({COLS}) FROM STDIN") as copy,
        ):
            await copy.write(bytes(data))
        return deleted, time.perf_counter() - started


async def run(vigil: Vigil, cfg: BenchConfig) -> Outcome:
    n = cfg.ingest_rows
    out = Outcome(
        "ingest",
        params={
            "results per run": n,
            "batch": BATCH,
            "parallel posts": cfg.ingest_concurrency,
            "runs": cfg.runs,
        },
    )
    vigil.start_api()
    org_id, _ = await vigil.org()
    token = await vigil.agent_token("default", "ingest")
    # Never probed: no agent runs here; the bench leases the slots itself.
    # An hour's interval: each run's slot (10 minutes apart, in the past) is still leasable, since
    # the lease never hands out a slot later than its own interval (the sweep records it missed).
    await vigil.bulk_targets(
        org_id, [HttpCheck(url="http://127.0.0.1:9/")] * n, interval=INGEST_INTERVAL
    )
    pids = vigil.pids("api")
    # Before the first run's slot (the oldest: 50 minutes back).
    first = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=55)
    async with await psycopg.AsyncConnection.connect(vigil.db_url, autocommit=True) as c:
        await c.execute(STEADY_STATES, {"at": first})
    ingest_rate, copy_rate, lease_rate, ratio = [], [], [], []
    writes_per_check: list[float] = []
    by_table: dict[str, int] = {}
    cpu_api, cpu_pg, stored = [], [], []
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for i in range(cfg.runs):
            # Distinct per run, within the interval, later with each run (a steady check follows
            # the region's last one; runs beyond the fifth reuse the window, a second later).
            back = timedelta(minutes=10 * (5 - i % 5), seconds=-(i // 5))
            slot = datetime.now(UTC).replace(microsecond=0) - back
            async with await psycopg.AsyncConnection.connect(vigil.db_url, autocommit=True) as c:
                await c.execute(MAKE_DUE, {"at": slot})
            before = await _settled_writes(vigil.db_url)
            t = time.perf_counter()
            leases = await _lease_all(session, vigil.base_url, n)
            lease_rate.append(len(leases) / (time.perf_counter() - t))
            bodies = _bodies(leases)
            a = sample(pids)
            t = time.perf_counter()
            accepted, rejected = await _post_all(
                session, vigil.base_url, bodies, cfg.ingest_concurrency
            )
            secs = time.perf_counter() - t
            cpu = cpu_between(a, sample(pids))
            if rejected or accepted != len(leases):
                out.notes.append(f"run {i + 1}: {accepted} stored, {rejected} rejected")
            ingest_rate.append(accepted / secs)
            stored.append(max(accepted, 1))
            cpu_api.append(cpu["api"])
            cpu_pg.append(cpu.get("postgres", 0.0))
            after = await _settled_writes(
                vigil.db_url, at_least=accepted, base=sum(before.values())
            )
            written = _delta(after, before)
            writes_per_check.append(sum(written.values()) / max(accepted, 1))
            for name, k in written.items():
                by_table[name] = by_table.get(name, 0) + k
            rows, copy_secs = await _copy_rate(vigil.db_url, slot)
            copy_rate.append(rows / copy_secs)
            ratio.append(ingest_rate[-1] / copy_rate[-1])
            print(
                f"bench: ingest run {i + 1}/{cfg.runs}: {ingest_rate[-1]:,.0f} results/s "
                f"(COPY {copy_rate[-1]:,.0f} rows/s, lease {lease_rate[-1]:,.0f} slots/s, "
                f"{writes_per_check[-1]:.3f} row writes per check)",
                flush=True,
            )
    out.add(
        "ingest results/s stored",
        ingest_rate,
        "results/s",
        target="≥ 20,000/s",
        meets=lambda x: x >= 20_000,
    )
    out.add("raw COPY of the same rows", copy_rate, "rows/s")
    out.add(
        "row writes per steady check (lease + ingest, every table)",
        writes_per_check,
        "rows",
        target="≤ 3",
        meets=lambda x: x <= 3.0,
    )
    total = max(sum(stored), 1)
    out.notes.append(
        "row writes per stored result, by table (lease + ingest calls, all runs): "
        + ", ".join(f"{k} {v / total:.3f}" for k, v in sorted(by_table.items()))
    )
    out.add("ingest / COPY", ratio, "x")
    out.add("lease slots/s (batches of 500)", lease_rate, "slots/s")
    out.add(
        "API CPU per 1,000 results ingested",
        [1000 * c / k for c, k in zip(cpu_api, stored, strict=True)],
        "cpu-s",
    )
    out.add(
        "PostgreSQL CPU per 1,000 results ingested",
        [1000 * c / k for c, k in zip(cpu_pg, stored, strict=True)],
        "cpu-s",
    )
    out.cpu_s["api (ingest)"] = spread(cpu_api)
    out.cpu_s["postgres (ingest)"] = spread(cpu_pg)
    return out
