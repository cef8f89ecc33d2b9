"""Ingest: results per second that agents get stored, as agents send them: ``BENCH_INGEST_AGENTS``
agents (4; each its own agent token and HTTP connection) lease slots and post their results in
batches of ``BENCH_INGEST_BATCH`` (200: an agent's batch, not the protocol's 1,000), all at once,
with the worker running (its rollups, sweeps and evaluation cost PostgreSQL CPU too), for at least
``BENCH_INGEST_SECONDS`` (30 s) per run. Against it, a raw ``COPY`` of a round's rows into the
same ``results`` table of the same PostgreSQL.

A run is rounds: every slot of ``BENCH_INGEST_ROWS`` (2,000) targets is made due at the round's
start (the bench's own statement, outside the measured time and left out of the write counts and
of pg_stat_statements), then the agents lease and post until nothing is due. Slots due at most
a round ago are what the lease takes first in normal running (slots older than its shed window,
2 s, take its overload path); a round of 2,000 lasts well under that. After a result the
schedule moves to the target's next grid point, up to an hour later (``INGEST_INTERVAL``), so a
slot is leased once.
Measured time, CPU (per process: API, worker, PostgreSQL) and results are summed over the rounds'
agent phases until they reach the run's length. The last round's rows are then read back with
``COPY … TO STDOUT``, deleted, and written again with ``COPY … FROM STDIN``.

Row writes per steady check (issue 18): every target's region starts as the evaluation leaves a
steady one (``up``, not failing, its good run at the confirmations, evaluated before the first
round's slot), and the rounds' slots go forward in time, so each result is a steady check: the
common case of a running system. The figure is the delta of ``n_tup_ins + n_tup_upd +
n_tup_del`` over every table of ``pg_stat_user_tables`` across the run, less the bench's own
writes (bench/honesty.py), divided by the results stored; the hot path (lease + ingest) and the
rollups the worker wrote for them are reported apart. The statistics are read once every backend
has reported them (they are flushed within 10 s of a backend going idle), so writes the worker
makes in those seconds are counted too.

``BENCH_PG_STATEMENTS=1``: the top statements of the run by total execution time, per result.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import msgspec
import psycopg

from bench import statements
from bench.config import BenchConfig
from bench.honesty import split_writes
from bench.proc import cpu_between, sample, spread
from bench.report import Outcome
from bench.stack import Vigil
from shared.checks import HttpCheck
from shared.protocol import MAX_INGEST_BATCH

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
SETTLE_S = 11.5
TABLE_WRITES = """
SELECT relname, n_tup_ins + n_tup_upd + n_tup_del AS n FROM pg_stat_user_tables
"""
MAKE_DUE = """
UPDATE schedules SET next_due_at = %(at)s, leased_by = NULL, lease_expires_at = NULL
WHERE region_id = 'default'
"""


def _body(leases: list[dict[str, Any]]) -> bytes:
    now = datetime.now(UTC)
    started, finished = now.isoformat(), (now + timedelta(milliseconds=12)).isoformat()
    return msgspec.json.encode(
        {
            "results": [
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
        }
    )


def _bodies(leases: list[dict[str, Any]], batch: int = MAX_INGEST_BATCH) -> list[bytes]:
    """Bodies of at most ``batch`` results (the notify-outage scenario posts them too)."""
    return [_body(leases[i : i + batch]) for i in range(0, len(leases), batch)]


async def _agent(session: aiohttp.ClientSession, url: str, batch: int) -> tuple[int, int]:
    """One agent: lease up to ``batch`` slots, post their results, until nothing is due;
    (stored, rejected)."""
    accepted = rejected = 0
    while True:
        async with session.post(
            url + "/api/agent/lease", json={"max": batch, "wait_ms": 0}
        ) as resp:
            got = msgspec.json.decode(await resp.read())
            if resp.status != 200:
                raise RuntimeError(f"lease: {resp.status} {got}")
        leases = got["leases"]
        if not leases:
            return accepted, rejected
        async with session.post(
            url + "/api/agent/ingest",
            data=_body(leases),
            headers={"Content-Type": "application/json"},
        ) as resp:
            got = msgspec.json.decode(await resp.read())
            if resp.status != 200:
                raise RuntimeError(f"ingest: {resp.status} {got}")
        accepted += got["accepted"]
        rejected += len(got["rejected"])


async def _table_writes(db_url: str) -> dict[str, int]:
    """Rows written so far per table (the partitions of ``results`` as one), once every backend
    has flushed its statistics."""
    await asyncio.sleep(SETTLE_S)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        rows = await (await conn.execute(TABLE_WRITES)).fetchall()
    out: dict[str, int] = {}
    for name, n in rows:
        key = "results" if str(name).startswith("results") else str(name)
        out[key] = out.get(key, 0) + int(n)
    return out


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}


async def _make_due(db_url: str, slot: datetime, quiet: bool) -> int:
    """The bench's own write: every schedule due at ``slot``; rows written."""
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        if quiet:  # not the system's statement: kept out of pg_stat_statements
            await conn.execute("SET pg_stat_statements.track = 'none'")
        cur = await conn.execute(MAKE_DUE, {"at": slot})
        return max(cur.rowcount, 0)


async def _copy_rate(db_url: str, slot: datetime) -> tuple[int, float]:
    """Read a round's rows out with COPY, delete them, COPY them back in; (rows, seconds)."""
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
    n, agents, batch = cfg.ingest_rows, cfg.ingest_agents, cfg.ingest_batch
    quiet = cfg.pg_statements
    out = Outcome(
        "ingest",
        params={
            "targets made due per round": n,
            "agents (concurrent, each leases and posts)": agents,
            "results per POST": batch,
            "measured per run_s": cfg.ingest_seconds,
            "worker": "running",
            "runs": cfg.runs,
        },
    )
    vigil.start_api()
    vigil.start_worker()
    org_id, _ = await vigil.org()
    tokens = [await vigil.agent_token("default", f"ingest-{i}") for i in range(agents)]
    # An hour's interval: the next grid point after a round's slot is practically never due
    # before the round ends (it would be leased again, outside the round's count).
    await vigil.bulk_targets(
        org_id, [HttpCheck(url="http://127.0.0.1:9/")] * n, interval=INGEST_INTERVAL
    )
    pids = vigil.pids("api", "worker")
    async with await psycopg.AsyncConnection.connect(vigil.db_url, autocommit=True) as c:
        await c.execute(STEADY_STATES, {"at": datetime.now(UTC) - timedelta(minutes=5)})
    rate: list[float] = []
    copy_rate: list[float] = []
    ratio: list[float] = []
    hot_per_check: list[float] = []
    rollup_per_check: list[float] = []
    by_table: dict[str, int] = {}
    cpu: dict[str, list[float]] = {"api": [], "worker": [], "postgres": []}
    stored: list[int] = []
    top: list[str] = []
    sessions = [aiohttp.ClientSession(headers={"Authorization": f"Bearer {t}"}) for t in tokens]
    try:
        for i in range(cfg.runs):
            before = await _table_writes(vigil.db_url)
            if cfg.pg_statements:
                await statements.reset(vigil.db_url)
            own = 0
            secs = 0.0
            accepted = rejected = rounds = 0
            used = {k: 0.0 for k in cpu}
            slot = datetime.now(UTC)
            while secs < cfg.ingest_seconds:
                # Due just now: later with each round (a steady check follows the last one).
                slot = datetime.now(UTC) - timedelta(milliseconds=100)
                own += await _make_due(vigil.db_url, slot, quiet)
                a = sample(pids)
                t = time.perf_counter()
                got = await asyncio.gather(*(_agent(s, vigil.base_url, batch) for s in sessions))
                secs += time.perf_counter() - t
                for k, v in cpu_between(a, sample(pids)).items():
                    used[k] = used.get(k, 0.0) + v
                accepted += sum(g[0] for g in got)
                rejected += sum(g[1] for g in got)
                rounds += 1
            if cfg.pg_statements:
                top = statements.per_check(await statements.top(vigil.db_url), accepted)
            if rejected or accepted != n * rounds:
                out.notes.append(
                    f"run {i + 1}: {accepted} stored of {n * rounds} due, {rejected} rejected"
                )
            rate.append(accepted / secs)
            stored.append(max(accepted, 1))
            for k in cpu:
                cpu[k].append(used.get(k, 0.0))
            written = _delta(await _table_writes(vigil.db_url), before)
            hot, rolled = split_writes(written, {"schedules": own})
            hot_per_check.append(hot / max(accepted, 1))
            rollup_per_check.append(rolled / max(accepted, 1))
            for name, rows_n in written.items():
                rows_n -= own if name == "schedules" else 0
                by_table[name] = by_table.get(name, 0) + rows_n
            rows, copy_secs = await _copy_rate(vigil.db_url, slot)
            copy_rate.append(rows / copy_secs)
            ratio.append(rate[-1] / copy_rate[-1])
            print(
                f"bench: ingest run {i + 1}/{cfg.runs}: {rate[-1]:,.0f} results/s over "
                f"{secs:.1f} s ({rounds} rounds, {agents} agents x {batch}), PostgreSQL "
                f"{1000 * used.get('postgres', 0.0) / max(accepted, 1):.3f} cpu-s per 1,000, "
                f"{hot_per_check[-1]:.3f} hot-path row writes per check "
                f"(+{rollup_per_check[-1]:.3f} rollups); COPY {copy_rate[-1]:,.0f} rows/s",
                flush=True,
            )
    finally:
        for s in sessions:
            await s.close()
    out.add(
        f"ingest results/s stored ({agents} agents, {batch} per POST, lease + ingest, worker on)",
        rate,
        "results/s",
        target="≥ 50,000/s",
        meets=lambda x: x >= 50_000,
    )
    out.add("raw COPY of the same rows", copy_rate, "rows/s")
    out.add("ingest / COPY", ratio, "x")
    out.add(
        "row writes per steady check, hot path (lease + ingest, every table but the rollups')",
        hot_per_check,
        "rows",
        target="≤ 3",
        meets=lambda x: x <= 3.0,
    )
    out.add("row writes per check by the worker's rollups", rollup_per_check, "rows")
    total = max(sum(stored), 1)
    out.notes.append(
        "row writes per stored result, by table (all runs, the bench's own left out): "
        + ", ".join(f"{k} {v / total:.3f}" for k, v in sorted(by_table.items()))
    )
    for name in ("api", "worker", "postgres"):
        out.add(
            f"{'PostgreSQL' if name == 'postgres' else name} CPU per 1,000 results",
            [1000 * c / k for c, k in zip(cpu[name], stored, strict=True)],
            "cpu-s",
        )
        out.cpu_s[f"{name} (ingest)"] = spread(cpu[name])
    if top:
        out.notes.append(
            "pg_stat_statements, last run, top statements by total execution time per result: "
            + "; ".join(top)
        )
    return out
