"""The benchmark's knobs: ``BENCH_*`` environment variables, small defaults that fit one
``make bench`` in under 15 minutes on a 2-core machine."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    return float(raw) if raw.strip() else default


@dataclass(frozen=True)
class BenchConfig:
    # Runs per figure (median and min/max are taken over them).
    runs: int = field(default_factory=lambda: max(3, _int("BENCH_RUNS", 3)))
    # agent: targets per variant at a 10 s interval (offered checks/s = targets / 10), the
    # measuring window of each run, and the concurrency of the agent, aiohttp loop and wrk.
    agent_targets: int = field(default_factory=lambda: _int("BENCH_AGENT_TARGETS", 30_000))
    agent_window_s: float = field(default_factory=lambda: _float("BENCH_AGENT_WINDOW_S", 6.0))
    concurrency: int = field(default_factory=lambda: _int("BENCH_CONCURRENCY", 100))
    agent_variants: tuple[str, ...] = field(
        default_factory=lambda: tuple(
            v.strip()
            for v in os.environ.get("BENCH_AGENT_VARIANTS", "http,tcp,https").split(",")
            if v.strip()
        )
    )
    # system: targets at a 60 s interval and the length of each measured window.
    system_targets: int = field(default_factory=lambda: _int("BENCH_SYSTEM_TARGETS", 60_000))
    system_window_s: float = field(default_factory=lambda: _float("BENCH_SYSTEM_WINDOW_S", 20.0))
    # Agent processes (``vigil-agent --processes N``) in the system scenario.
    system_agent_processes: int = field(
        default_factory=lambda: max(1, _int("BENCH_SYSTEM_AGENT_PROCESSES", 1))
    )
    system_warmup_s: float = field(default_factory=lambda: _float("BENCH_SYSTEM_WARMUP_S", 15.0))
    # ingest: leased slots posted per run (in batches of 1,000) and parallel posts.
    ingest_rows: int = field(default_factory=lambda: _int("BENCH_INGEST_ROWS", 10_000))
    ingest_concurrency: int = field(default_factory=lambda: _int("BENCH_INGEST_CONCURRENCY", 4))
    # reads: requests per endpoint per run, and concurrent clients.
    reads_requests: int = field(default_factory=lambda: _int("BENCH_READS_REQUESTS", 200))
    reads_clients: int = field(default_factory=lambda: _int("BENCH_READS_CLIENTS", 4))
    # fleet: targets in the org (x 2 regions), list requests per run, bulk create size.
    fleet_targets: int = field(default_factory=lambda: _int("BENCH_FLEET_TARGETS", 60_000))
    fleet_requests: int = field(default_factory=lambda: _int("BENCH_FLEET_REQUESTS", 200))
    # sort=status list requests per run (default: as many as the other lists).
    fleet_sort_requests: int = field(
        default_factory=lambda: _int("BENCH_FLEET_SORT_REQUESTS", _int("BENCH_FLEET_REQUESTS", 200))
    )
    # Uncached dashboard summary requests per run (default: as many as the lists).
    fleet_dashboard_requests: int = field(
        default_factory=lambda: _int(
            "BENCH_FLEET_DASHBOARD_REQUESTS", _int("BENCH_FLEET_REQUESTS", 200)
        )
    )
    fleet_bulk: int = field(default_factory=lambda: _int("BENCH_FLEET_BULK", 10_000))
    # PostgreSQL with fsync off (faster, not what a deployment runs).
    pg_fast: bool = field(default_factory=lambda: os.environ.get("BENCH_PG_FAST", "") == "1")
