"""What the results and uptime reads return."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec


class PhaseTimings(msgspec.Struct, kw_only=True):
    dns_ms: float | None
    connect_ms: float | None
    tls_ms: float | None
    ttfb_ms: float | None
    total_ms: float | None


class CheckResultOut(msgspec.Struct, kw_only=True):
    target_id: uuid.UUID
    region: str
    # The slot this result is for (server clock); results are ordered by it.
    timestamp: datetime
    started_at: datetime | None
    finished_at: datetime | None
    status: str
    latency_ms: float | None
    status_code: int | None
    error: str | None
    error_code: str | None
    timings: PhaseTimings
    details: dict[str, Any]


class Uptime(msgspec.Struct, kw_only=True):
    # Results that say something about the target; ``missed`` slots are counted apart.
    total: int
    up: int
    down: int
    degraded: int
    error: int
    missed: int
    # (up + degraded) / total, as a percentage; null when there is no result in the range.
    uptime_pct: float | None


class LatencyBucket(msgspec.Struct, kw_only=True):
    # Bucket start, unix milliseconds.
    t: int
    p50: float
    p95: float
    p99: float
    # Mean total latency; the phase means are 0 for kinds that skip the phase.
    avg: float
    dns: float
    connect: float
    tls: float
    ttfb: float
    # 0 marks a gap (no sample in the bucket; the figures above are 0 then).
    samples: int


class LatencySeries(msgspec.Struct, kw_only=True):
    bucket_seconds: int
    buckets: list[LatencyBucket]


class RegionLatency(msgspec.Struct, kw_only=True):
    region: str
    buckets: list[LatencyBucket]


class LatencyByRegion(msgspec.Struct, kw_only=True):
    bucket_seconds: int
    regions: list[RegionLatency]


def result_from_row(target_id: uuid.UUID, row: tuple[Any, ...]) -> CheckResultOut:
    """A result as reads show it, from its columns in ``results_page``'s order: (region,
    scheduled_at, started_at, finished_at, status, latency_ms, status_code, error, error_code,
    dns_ms, connect_ms, tls_ms, ttfb_ms, details)."""
    (region, scheduled_at, started_at, finished_at, status, latency_ms, status_code, error,
     error_code, dns_ms, connect_ms, tls_ms, ttfb_ms, details) = row  # fmt: skip
    return CheckResultOut(
        target_id=target_id,
        region=region,
        timestamp=scheduled_at,
        started_at=started_at,
        finished_at=finished_at,
        status=status,
        latency_ms=latency_ms,
        status_code=status_code,
        error=error,
        error_code=error_code,
        timings=PhaseTimings(
            dns_ms=dns_ms,
            connect_ms=connect_ms,
            tls_ms=tls_ms,
            ttfb_ms=ttfb_ms,
            total_ms=latency_ms,
        ),
        details=details or {},
    )


class PhaseStats(msgspec.Struct, kw_only=True):
    """Milliseconds; null when no check of the range has the phase."""

    avg: float | None
    p50: float | None
    p95: float | None


class Performance(msgspec.Struct, kw_only=True):
    """Per-phase timings of a target's checks over a range (``download`` is total - ttfb)."""

    samples: int
    dns: PhaseStats
    connect: PhaseStats
    tls: PhaseStats
    ttfb: PhaseStats
    download: PhaseStats
    total: PhaseStats
    # Response body size is not recorded by the agents yet: always null.
    response_size: int | None
    slowest: list[CheckResultOut]
