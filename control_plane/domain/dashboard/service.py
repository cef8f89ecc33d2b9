"""The org's dashboard rollup, cached 5 s per org in Redis.

The cache key carries the org id (``<prefix>dashboard:<org>``), so two orgs never share an
entry; the entry is the encoded JSON answer. Redis being away only costs the cache: the summary
is computed uncached. ``Cache-Control: private, max-age=5`` is stamped by
``core/cache_control.py``.
"""

from __future__ import annotations

import msgspec
import structlog
from redis.exceptions import RedisError

from control_plane.core.service import TenantService
from control_plane.db.sql import Queries

from .in_flight import FRESH_SECS
from .schemas import DashboardSummary, Last24h, StatusCounts, SystemCounts, TargetCounts

Q = Queries.beside(__file__)
TTL_MS = 5000
log = structlog.get_logger("vigil.dashboard")


class DashboardService(TenantService):
    def cache_key(self) -> str:
        return f"{self.settings.redis.prefix}dashboard:{self.org.org_id}"

    async def summary_json(self) -> bytes:
        """The encoded summary: the cached one when fresher than 5 s, else computed now."""
        key = self.cache_key()
        try:
            cached = await self.res.redis.get(key)
        except RedisError:
            cached = None
        if cached is not None:
            return bytes(cached)
        body = msgspec.json.encode(await self.compute())
        try:
            await self.res.redis.set(key, body, px=TTL_MS)
        except RedisError as exc:
            log.warning("dashboard_cache_unavailable", error=repr(exc))
        return body

    async def compute(self) -> DashboardSummary:
        conn = await self.conn()
        row = await (
            await conn.execute(Q.summary, {"org_id": self.org.org_id, "fresh_secs": FRESH_SECS})
        ).fetchone()
        assert row is not None
        checks, up = int(row["checks"]), int(row["checks_up"])
        return DashboardSummary(
            targets=TargetCounts(
                total=row["total"], enabled=row["enabled"], disabled=row["total"] - row["enabled"]
            ),
            current_status=StatusCounts(
                up=row["up"],
                down=row["down"],
                degraded=row["degraded"],
                error=row["error"],
                unknown=row["unknown"],
            ),
            last_24h=Last24h(
                checks_total=checks,
                checks_up=up,
                uptime_pct=round(100.0 * up / checks, 2) if checks else None,
                incidents=row["incidents"],
            ),
            system=SystemCounts(
                in_flight_checks=row["in_flight"],
                result_queue_depth=row["queue_depth"],
                dropped_results_last_5m=row["dropped"],
                # Vigil has no circuit breakers on its result path: always 0.
                circuit_breakers_open=0,
            ),
        )
