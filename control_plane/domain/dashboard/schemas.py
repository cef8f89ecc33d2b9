"""GET /api/v1/dashboard/summary, as the reference shapes it."""

from __future__ import annotations

import msgspec


class TargetCounts(msgspec.Struct):
    total: int
    enabled: int
    disabled: int


class StatusCounts(msgspec.Struct):
    up: int
    down: int
    degraded: int
    error: int
    unknown: int


class Last24h(msgspec.Struct):
    checks_total: int
    checks_up: int
    uptime_pct: float | None
    incidents: int


class SystemCounts(msgspec.Struct):
    in_flight_checks: int
    result_queue_depth: int
    dropped_results_last_5m: int
    circuit_breakers_open: int


class DashboardSummary(msgspec.Struct):
    targets: TargetCounts
    current_status: StatusCounts
    last_24h: Last24h
    system: SystemCounts
