"""Prometheus metrics of the monitoring loop, on the app's registry.

Counters move where the work happens (lease, ingest). Gauges that describe the whole system
(agents last seen per region, open incidents, evaluation lag, due slots waiting) are read from
PostgreSQL by a refresher task every few seconds, so every control-plane replica exports the
same truth and a scrape never waits on the database.

The same refresher pings PostgreSQL and Redis (``vigil_dependency_up{dependency}``) and, when an
operator opted orgs or tags in (``TargetMetricsSettings``), exports per-target series like
blackbox's ``probe_success``: ``vigil_target_up{org,target,region}``,
``vigil_target_latency_seconds`` and ``vigil_target_info{org,target,name}``, never more than
``max_series`` target/region pairs (``vigil_target_metrics_truncated`` 1 when cut).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from control_plane.core.observability.metrics import Metrics
from control_plane.settings import TargetMetricsSettings

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


# The last stored status of each opted-in target per region, and its last measured latency.
_TARGET_SQL = """
SELECT t.org_id::text AS org, t.id::text AS target, t.name, t.kind, rs.region_id AS region,
       rs.last_status AS status, r.latency_ms, r.dns_ms, r.connect_ms, r.tls_ms, r.ttfb_ms,
       CASE WHEN jsonb_typeof(r.details -> 'days_remaining') = 'number'
            THEN (r.details ->> 'days_remaining')::float8 END AS days_remaining
  FROM targets t
  JOIN region_states rs ON rs.target_id = t.id
  LEFT JOIN LATERAL (
    SELECT latency_ms, dns_ms, connect_ms, tls_ms, ttfb_ms, details FROM results
     WHERE target_id = t.id AND region_id = rs.region_id AND status <> 'missed'
     ORDER BY scheduled_at DESC LIMIT 1) r ON true
 WHERE t.enabled
   AND rs.last_status IN ('up', 'degraded', 'down', 'error')
   AND (%(all_orgs)s OR t.org_id::text = ANY(%(orgs)s) OR t.tags && %(tags)s::text[])
 ORDER BY t.org_id, t.id, rs.region_id
 LIMIT %(limit)s
"""
# The phases of a check's latency exported per target (columns of ``results``, milliseconds).
PHASES = ("dns", "connect", "tls", "ttfb")
# Check kinds whose results carry ``details.days_remaining``, and the gauge each feeds.
EXPIRY_KINDS = {"tls_cert": "tls", "domain_expiry": "domain"}
# Statuses that count as a successful check for ``vigil_target_up`` (like ``probe_success``).
UP_STATUSES = frozenset({"up", "degraded"})
DEPENDENCY_TIMEOUT_S = 2.0
# Seconds between a slot's scheduled time and its lease (an idle region leases on time).
LATENESS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class MonitoringMetrics:
    def __init__(self, metrics: Metrics, targets: TargetMetricsSettings | None = None) -> None:
        self.targets = targets or TargetMetricsSettings()
        self.leases = metrics.counter(
            "vigil_agent_leases_total", "slots handed to agents", ("region",)
        )
        self.lateness = metrics.histogram(
            "vigil_lease_lateness_seconds",
            "how late a slot was leased after its scheduled time",
            ("region",),
            buckets=LATENESS_BUCKETS,
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
        self.dependency_up = metrics.gauge(
            "vigil_dependency_up",
            "1 when the last ping of the dependency (postgres, redis) succeeded, else 0",
            ("dependency",),
        )
        self.target_up = metrics.gauge(
            "vigil_target_up",
            "1 when the target's last check in the region succeeded (up or degraded), else 0; "
            "opted-in orgs/tags only",
            ("org", "target", "region"),
        )
        self.target_latency = metrics.gauge(
            "vigil_target_latency_seconds",
            "latency of the target's last check in the region; opted-in orgs/tags only",
            ("org", "target", "region"),
        )
        self.target_phase = metrics.gauge(
            "vigil_target_phase_seconds",
            "time of each phase (dns, connect, tls, ttfb) of the target's last check in the "
            "region; opted-in orgs/tags only",
            ("org", "target", "region", "phase"),
        )
        self.target_tls_days = metrics.gauge(
            "vigil_target_tls_days_remaining",
            "days until the certificate of a tls_cert target expires, as last checked",
            ("org", "target", "region"),
        )
        self.target_domain_days = metrics.gauge(
            "vigil_target_domain_days_remaining",
            "days until the domain of a domain_expiry target expires, as last checked",
            ("org", "target", "region"),
        )
        self.target_info = metrics.gauge(
            "vigil_target_info", "1 per exported target, naming it", ("org", "target", "name")
        )
        self.target_truncated = metrics.gauge(
            "vigil_target_metrics_truncated",
            "1 when more target/region pairs are opted in than VIGIL_TARGET_METRICS_MAX allows",
        )

    def observe_lateness(self, region: str, leases: Sequence[Any], now: datetime) -> None:
        hist = self.lateness.labels(region=region)
        for lease in leases:
            hist.observe(max(0.0, (now - lease.scheduled_at).total_seconds()))

    async def refresh(
        self,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        redis: Redis | None = None,
    ) -> None:
        if redis is not None:
            await self.ping_redis(redis)
        answered = False
        try:
            async with pool.connection() as conn:
                row = await (await conn.execute(_GAUGE_SQL)).fetchone()
                answered = True
                self.dependency_up.labels(dependency="postgres").set(1)
                target_rows = await self._target_rows(conn)
        except Exception:
            if not answered:  # the per-target query failing says nothing about reachability
                self.dependency_up.labels(dependency="postgres").set(0)
            raise
        if target_rows is not None:
            self._set_targets(target_rows)
        if row is None:
            return
        # A region whose agents were all revoked drops out (else it would look silent forever).
        self.agent_last_seen.clear()
        for region, ts in row["last_seen"].items():
            self.agent_last_seen.labels(region=region).set(float(ts))
        self.due_slots.clear()
        for region, n in row["due"].items():
            self.due_slots.labels(region=region).set(float(n))
        self.open_incidents.set(float(row["open_incidents"]))
        self.evaluation_lag.set(float(row["evaluation_lag"]))

    async def ping_redis(self, redis: Redis) -> None:
        try:
            await asyncio.wait_for(redis.ping(), DEPENDENCY_TIMEOUT_S)
        except Exception as exc:
            self.dependency_up.labels(dependency="redis").set(0)
            log.warning("metrics_redis_ping_failed", error=str(exc) or type(exc).__name__)
        else:
            self.dependency_up.labels(dependency="redis").set(1)

    async def _target_rows(self, conn: AsyncConnection[Any]) -> list[dict[str, Any]] | None:
        t = self.targets
        if not t.enabled:
            return None
        cur = await conn.execute(
            _TARGET_SQL,
            {
                "all_orgs": "*" in t.orgs,
                "orgs": sorted(t.orgs - {"*"}),
                "tags": sorted(t.tags),
                "limit": t.max_series + 1,
            },
        )
        return list(await cur.fetchall())

    def _set_targets(self, rows: list[dict[str, Any]]) -> None:
        limit = self.targets.max_series
        self.target_truncated.set(1 if len(rows) > limit else 0)
        if len(rows) > limit:
            log.warning("target_metrics_truncated", max_series=limit)
        expiry = {"tls": self.target_tls_days, "domain": self.target_domain_days}
        for gauge in (
            self.target_up,
            self.target_latency,
            self.target_phase,
            *expiry.values(),
            self.target_info,
        ):
            gauge.clear()
        for r in rows[:limit]:
            key = {"org": r["org"], "target": r["target"], "region": r["region"]}
            self.target_up.labels(**key).set(1 if r["status"] in UP_STATUSES else 0)
            if r["latency_ms"] is not None:
                self.target_latency.labels(**key).set(float(r["latency_ms"]) / 1000)
            for phase in PHASES:
                if r[f"{phase}_ms"] is not None:
                    self.target_phase.labels(**key, phase=phase).set(float(r[f"{phase}_ms"]) / 1000)
            kind = EXPIRY_KINDS.get(r["kind"])
            if kind is not None and r["days_remaining"] is not None:
                expiry[kind].labels(**key).set(float(r["days_remaining"]))
            self.target_info.labels(org=r["org"], target=r["target"], name=r["name"]).set(1)

    async def run_refresher(
        self,
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        stop: asyncio.Event,
        redis: Redis | None = None,
    ) -> None:
        # Never cancelled mid-query (a cancelled pool checkout can wedge shutdown): it stops
        # between refreshes when ``stop`` is set.
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REFRESH_SECS)
            if stop.is_set():
                return
            try:
                await self.refresh(pool, redis)
            except Exception as exc:  # the database being down must not kill the app
                log.warning("metrics_refresh_failed", error=str(exc))


@contextlib.asynccontextmanager
async def refresher(
    mm: MonitoringMetrics,
    pool: AsyncConnectionPool[AsyncConnection[Any]],
    redis: Redis | None = None,
) -> Any:
    stop = asyncio.Event()
    task = asyncio.create_task(mm.run_refresher(pool, stop, redis))
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 15)
        except (TimeoutError, asyncio.CancelledError):
            log.warning("metrics_refresher_stuck")
