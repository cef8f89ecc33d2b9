"""Prometheus metrics of the monitoring loop, on the app's registry.

Counters move where the work happens (lease, ingest). Gauges that describe the whole system
(agents last seen per region, open incidents, evaluation lag, due slots waiting) are read from
PostgreSQL by a refresher task every few seconds, so every control-plane replica exports the
same truth and a scrape never waits on the database.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from control_plane.core.observability.metrics import Metrics

log = structlog.get_logger("vigil.metrics")
REFRESH_SECS = 5.0

_GAUGE_SQL = """
SELECT
  (SELECT coalesce(json_object_agg(region_id, extract(epoch FROM seen)), '{}')
     FROM (SELECT region_id, max(last_seen_at) AS seen FROM agents
           WHERE revoked_at IS NULL AND last_seen_at IS NOT NULL GROUP BY region_id) a)
    AS last_seen,
  (SELECT coalesce(json_object_agg(region_id, n), '{}')
     FROM (SELECT region_id, count(*) AS n FROM schedules
           WHERE next_due_at <= now()
             AND (lease_expires_at IS NULL OR lease_expires_at < now())
           GROUP BY region_id) d)
    AS due,
  (SELECT count(*) FROM incidents WHERE ended_at IS NULL) AS open_incidents,
  (SELECT coalesce(extract(epoch FROM clock_timestamp() - min(dirty_at)), 0)
     FROM evaluation_queue) AS evaluation_lag
"""


class MonitoringMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self.leases = metrics.counter(
            "vigil_agent_leases_total", "slots handed to agents", ("region",)
        )
        self.results = metrics.counter(
            "vigil_ingest_results_total", "check results stored, by status", ("region", "status")
        )
        self.duplicates = metrics.counter(
            "vigil_ingest_duplicates_total", "re-sent results acknowledged", ("region",)
        )
        self.rejected = metrics.counter(
            "vigil_ingest_rejected_total", "result rows refused, by code", ("region", "code")
        )
        self.agent_last_seen = metrics.gauge(
            "vigil_agent_last_seen_timestamp_seconds",
            "unix time an agent of the region last called the control plane",
            ("region",),
        )
        self.due_slots = metrics.gauge(
            "vigil_due_slots", "slots due now and not held by any agent", ("region",)
        )
        self.open_incidents = metrics.gauge("vigil_incidents_open", "incidents open now")
        self.evaluation_lag = metrics.gauge(
            "vigil_evaluation_lag_seconds", "age of the oldest result not yet evaluated"
        )

    async def refresh(self, pool: AsyncConnectionPool[AsyncConnection[Any]]) -> None:
        async with pool.connection() as conn:
            row = await (await conn.execute(_GAUGE_SQL)).fetchone()
        if row is None:
            return
        for region, ts in row["last_seen"].items():
            self.agent_last_seen.labels(region=region).set(float(ts))
        self.due_slots.clear()
        for region, n in row["due"].items():
            self.due_slots.labels(region=region).set(float(n))
        self.open_incidents.set(float(row["open_incidents"]))
        self.evaluation_lag.set(float(row["evaluation_lag"]))

    async def run_refresher(
        self, pool: AsyncConnectionPool[AsyncConnection[Any]], stop: asyncio.Event
    ) -> None:
        # Never cancelled mid-query (a cancelled pool checkout can wedge shutdown): it stops
        # between refreshes when ``stop`` is set.
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REFRESH_SECS)
            if stop.is_set():
                return
            try:
                await self.refresh(pool)
            except Exception as exc:  # the database being down must not kill the app
                log.warning("metrics_refresh_failed", error=str(exc))


@contextlib.asynccontextmanager
async def refresher(mm: MonitoringMetrics, pool: AsyncConnectionPool[AsyncConnection[Any]]) -> Any:
    stop = asyncio.Event()
    task = asyncio.create_task(mm.run_refresher(pool, stop))
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 15)
        except (TimeoutError, asyncio.CancelledError):
            log.warning("metrics_refresher_stuck")
