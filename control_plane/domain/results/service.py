"""Reads of one target's results over a range, scoped by org: raw results, uptime (rollups for
the settled full minutes, raw rows for the edges and the recent tail), latency series (rollups).

Minute retention (``VIGIL_MINUTE_ROLLUP_RETENTION_DAYS``): before ``rollup_state.minutes_from``
only hourly rollups are left, so over those days both reads work at hourly grain. An hour at an
edge of the range that is only partly inside it is then read whole (never left out): the answer
covers the whole hours the range touches there, so nothing inside the range is missing, and up to
an hour outside it may be counted at each such edge. Hour-aligned ranges are exact as before.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from control_plane.core import csv_export
from control_plane.core.service import TenantService
from control_plane.core.timerange import TimeRange
from control_plane.db.sql import Queries
from control_plane.domain.maintenance.service import covering as maintenance_covering
from control_plane.domain.results.rollups import (
    ceil_hour,
    ceil_minute,
    floor_hour,
    floor_minute,
    settled_until,
)
from control_plane.domain.targets.service import target_not_found

from .latency import HOURLY_FROM_BUCKET, bucket_seconds, series
from .schemas import (
    CheckResultOut,
    LatencyByRegion,
    LatencySeries,
    Performance,
    PhaseStats,
    RegionLatency,
    Uptime,
    result_from_row,
)

Q = Queries.beside(__file__, "reads")
QP = Queries.beside(__file__, "performance")
SLOWEST = 10


class Horizon(NamedTuple):
    # Up to where the target's rollups are final (None: nothing is).
    settled: datetime | None
    # Where the minute rollups kept by retention start (None: all are kept).
    minutes_from: datetime | None = None


async def _horizon(conn: AsyncConnection[Any], org_id: uuid.UUID, target_id: uuid.UUID) -> Horizon:
    """404 unless the target is the org's; else how far its rollups go."""
    row = await (
        await conn.execute(Q.target_horizon, {"target_id": target_id, "org_id": org_id})
    ).fetchone()
    if row is None:
        raise target_not_found()
    return Horizon(settled_until(row["ran_at"], int(row["interval_secs"])), row["minutes_from"])


def uptime_split(
    start: datetime,
    end: datetime,
    settled: datetime | None,
    minutes_from: datetime | None = None,
) -> tuple[datetime, datetime, datetime, datetime]:
    """a <= h1 <= h2 <= b: [a, b) are the full, settled minutes of [start, end), read from
    rollups ([h1, h2), its full hours, from the hourly ones); raw rows cover [start, min(a, end))
    and [b, end).

    When [a, b) starts before ``minutes_from`` (those minutes expired), its partial edge hours
    there are read whole from the hourly rollups: a (and b, when it is before ``minutes_from``
    too) move out to the hour, and the raw edges inside those hours are then empty."""
    # Rollup minutes and hours are UTC ones (a +05:30 'from' has its hours elsewhere).
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    a = ceil_minute(start)
    if settled is None:
        return a, a, a, a
    b = max(a, min(floor_minute(end), settled))
    h1 = min(ceil_hour(a), b)
    h2 = max(h1, floor_hour(b))
    if minutes_from is not None and a < minutes_from and a < b:
        # minutes_from is a UTC midnight at or before the settled hour: whole hours up to it are
        # in the hourly rollups.
        a = h1 = floor_hour(a)
        if b <= minutes_from:
            b = h2 = ceil_hour(b)
    return a, h1, h2, b


async def _counts(
    conn: AsyncConnection[Any],
    org_id: uuid.UUID,
    target_id: uuid.UUID,
    start: datetime,
    end: datetime,
    region: str | None,
    horizon: Horizon,
) -> dict[str, int]:
    """Results in [start, end) by status (``missed`` included), as counting raw rows would
    (over days whose minute rollups expired, in whole hours: see ``uptime_split``)."""
    a, h1, h2, b = uptime_split(start, end, horizon.settled, horizon.minutes_from)
    params = {
        "target_id": target_id,
        "org_id": org_id,
        "from": start,
        "to": end,
        "a": a,
        "h1": h1,
        "h2": h2,
        "b": b,
        "head_to": min(a, end),
        "region": region,
    }
    row = await (await conn.execute(Q.uptime, params)).fetchone()
    assert row is not None
    return {k: int(row[k]) for k in ("up", "down", "degraded", "error", "missed")}


async def _latency_rows(
    conn: AsyncConnection[Any],
    org_id: uuid.UUID,
    target_id: uuid.UUID,
    *,
    start: datetime,
    end: datetime,
    region: str | None,
    by_region: bool,
) -> tuple[datetime, int, list[dict[str, Any]]]:
    settled, minutes_from = await _horizon(conn, org_id, target_id)
    bucket = bucket_seconds(start, end)
    origin = floor_minute(start.astimezone(UTC))
    # Long ranges (buckets of 6 h and more) read the settled hours from the hourly rows.
    h_lo = h_hi = m_lo = origin
    if bucket >= HOURLY_FROM_BUCKET and settled is not None:
        h_lo = floor_hour(origin)
        h_hi = m_lo = max(h_lo, min(floor_hour(settled), floor_hour(end)))
    # Days whose minute rollups expired are read from the hourly rows whatever the bucket, the
    # range's last hour there whole (minutes_from is a midnight before the settled hour).
    if minutes_from is not None and origin < minutes_from:
        h_lo = floor_hour(origin)
        h_hi = m_lo = max(h_hi, min(minutes_from, ceil_hour(end)))
    params = {
        "target_id": target_id,
        "org_id": org_id,
        "origin": origin,
        "to": end,
        "h_lo": h_lo,
        "h_hi": h_hi,
        "m_lo": m_lo,
        "bucket": bucket,
        "region": region,
        "by_region": by_region,
    }
    rows = await (await conn.execute(Q.latency_buckets, params)).fetchall()
    return origin, bucket, rows


class ResultService(TenantService):
    """Range reads of one of the org's targets (another org's target is a 404)."""

    async def results_page(
        self,
        target_id: uuid.UUID,
        span: TimeRange,
        *,
        region: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[CheckResultOut], int]:
        """One page, newest first, and how many results match. Rows come as tuples in binary
        format (a page is up to 10,000 rows: parsing is most of its cost); the total is the page's
        length when the page is the whole answer, else counted like /uptime (settled minutes and
        hours from rollups, edges and tail from raw rows) instead of over every matching raw row."""
        conn, org_id = await self.conn(), self.org.org_id
        start, end = span
        horizon = await _horizon(conn, org_id, target_id)
        params = {
            "target_id": target_id,
            "org_id": org_id,
            "from": start,
            "to": end,
            "region": region,
            "limit": limit,
            "offset": offset,
        }
        async with conn.cursor(row_factory=tuple_row, binary=True) as cur:
            await cur.execute(Q.results_page, params)
            rows = await cur.fetchall()
        if offset == 0 and len(rows) < limit:
            total = len(rows)
        else:
            counts = await _counts(conn, org_id, target_id, start, end, region, horizon)
            total = sum(counts.values())
        return [result_from_row(target_id, r) for r in rows], total

    async def export(
        self, target_id: uuid.UUID, span: TimeRange, *, region: str | None
    ) -> AsyncIterator[CheckResultOut]:
        """Every result of the range, newest first, read as the CSV is sent (404 now if the
        target is not the org's)."""
        conn, org_id = await self.conn(), self.org.org_id
        await _horizon(conn, org_id, target_id)
        params = {
            "target_id": target_id,
            "org_id": org_id,
            "from": span.start,
            "to": span.end,
            "region": region,
            "limit": None,
            "offset": 0,
        }
        return csv_export.stream_rows(
            self.res.db,
            Q.results_page,
            params,
            lambda r: result_from_row(target_id, r),
            row_factory=tuple_row,
            binary=True,
        )

    async def performance(
        self, target_id: uuid.UUID, span: TimeRange, *, region: str | None
    ) -> Performance:
        conn, org_id = await self.conn(), self.org.org_id
        await _horizon(conn, org_id, target_id)
        params = {
            "target_id": target_id,
            "org_id": org_id,
            "from": span.start,
            "to": span.end,
            "region": region,
            "limit": SLOWEST,
        }
        stats = await (await conn.execute(QP.phase_stats, params)).fetchone()
        assert stats is not None
        async with conn.cursor(row_factory=tuple_row, binary=True) as cur:
            await cur.execute(QP.slowest, params)
            slow = await cur.fetchall()

        def phase(name: str) -> PhaseStats:
            def ms(value: Any) -> float | None:
                return None if value is None else round(float(value), 3)

            return PhaseStats(
                avg=ms(stats[f"{name}_avg"]),
                p50=ms(stats[f"{name}_p50"]),
                p95=ms(stats[f"{name}_p95"]),
            )

        return Performance(
            samples=int(stats["samples"]),
            dns=phase("dns"),
            connect=phase("connect"),
            tls=phase("tls"),
            ttfb=phase("ttfb"),
            download=phase("download"),
            total=phase("total"),
            response_size=None,
            slowest=[result_from_row(target_id, r) for r in slow],
        )

    async def uptime(
        self,
        target_id: uuid.UUID,
        span: TimeRange,
        *,
        region: str | None,
        exclude_maintenance: bool = False,
    ) -> Uptime:
        conn, org_id = await self.conn(), self.org.org_id
        start, end = span
        horizon = await _horizon(conn, org_id, target_id)
        c = await _counts(conn, org_id, target_id, start, end, region, horizon)
        if exclude_maintenance:
            # Counts are additive over disjoint ranges: take out each covered stretch's.
            for a, b in await maintenance_covering(conn, org_id, target_id, start, end):
                left = await _counts(conn, org_id, target_id, a, b, region, horizon)
                c = {k: max(0, c[k] - left[k]) for k in c}
        total = c["up"] + c["down"] + c["degraded"] + c["error"]
        return Uptime(
            total=total,
            up=c["up"],
            down=c["down"],
            degraded=c["degraded"],
            error=c["error"],
            missed=c["missed"],
            uptime_pct=round(100.0 * (c["up"] + c["degraded"]) / total, 3) if total else None,
        )

    async def latency(
        self,
        target_id: uuid.UUID,
        span: TimeRange,
        *,
        region: str | None,
    ) -> LatencySeries:
        """Latency buckets over [start, end) from the per-minute rollups, all regions together.

        Quantile q of a bucket is the q-quantile of the bucket's per-(minute, region) q-quantiles:
        exact when each of those holds one sample (a check every 60 s or slower), an approximation
        otherwise. avg and the phase means are sample-weighted means of the minute means, so exact.
        With buckets of 6 h or more (ranges of 15 days or more) the settled hours come from the
        hourly rollups instead: an hour goes whole to the bucket its start falls in, and its
        quantiles are themselves quantiles of its minutes' quantiles. So do, whatever the bucket,
        the hours of days whose minute rollups expired (retention): there the series has hourly
        grain, and an edge hour partly in the range counts whole."""
        conn, org_id = await self.conn(), self.org.org_id
        start, end = span
        origin, bucket, rows = await _latency_rows(
            conn, org_id, target_id, start=start, end=end, region=region, by_region=False
        )
        return LatencySeries(bucket_seconds=bucket, buckets=series(rows, origin, end, bucket))

    async def latency_by_region(
        self,
        target_id: uuid.UUID,
        span: TimeRange,
        *,
        region: str | None,
    ) -> LatencyByRegion:
        """As ``latency``, one series per region that has samples in the range."""
        conn, org_id = await self.conn(), self.org.org_id
        start, end = span
        origin, bucket, rows = await _latency_rows(
            conn, org_id, target_id, start=start, end=end, region=region, by_region=True
        )
        regions: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            regions.setdefault(r["region"], []).append(r)
        return LatencyByRegion(
            bucket_seconds=bucket,
            regions=[
                RegionLatency(region=name, buckets=series(rs, origin, end, bucket))
                for name, rs in sorted(regions.items())
            ],
        )
