"""Latency series: how a range is cut into buckets and how rollup rows become the series."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .schemas import LatencyBucket

# The range is cut into about this many buckets, floored to the 60 s rollup grain.
LATENCY_BUCKETS = 60
# From this bucket size on, settled hours are read from the hourly rollups.
HOURLY_FROM_BUCKET = 6 * 3600


def bucket_seconds(start: datetime, end: datetime) -> int:
    """1 h -> 60, 24 h -> 1440, 7 d -> 10080, 30 d -> 43200: always a multiple of 60."""
    span = int((end - start).total_seconds())
    return max(60, span // LATENCY_BUCKETS // 60 * 60)


def _r(v: Any) -> float:
    return round(float(v), 2) if v is not None else 0.0


def series(
    rows: list[dict[str, Any]], origin: datetime, end: datetime, bucket: int
) -> list[LatencyBucket]:
    by_index = {int((r["bucket_at"] - origin).total_seconds()) // bucket: r for r in rows}
    step = timedelta(seconds=bucket)
    n = -(-int((end - origin).total_seconds()) // bucket)
    out = []
    for i in range(n):
        t = int((origin + i * step).timestamp() * 1000)
        r = by_index.get(i)
        if r is None:
            out.append(
                LatencyBucket(
                    t=t, p50=0, p95=0, p99=0, avg=0, dns=0, connect=0, tls=0, ttfb=0, samples=0
                )
            )
            continue
        out.append(
            LatencyBucket(
                t=t,
                p50=_r(r["p50"]),
                p95=_r(r["p95"]),
                p99=_r(r["p99"]),
                avg=_r(r["avg"]),
                dns=_r(r["dns"]),
                connect=_r(r["connect"]),
                tls=_r(r["tls"]),
                ttfb=_r(r["ttfb"]),
                samples=int(r["samples"]),
            )
        )
    return out
