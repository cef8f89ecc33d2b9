"""The benchmark's knobs: ``BENCH_*`` environment variables. The defaults are honest rather
than quick: the system scenario alone searches for capacity with 5-minute steps (half an hour
or more); smoke runs shrink it with the knobs."""

from __future__ import annotations

import math
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
    # agent: targets per variant at a 60 s interval (offered checks/s = targets / 60), the
    # measuring window of each run, and the concurrency of the agent, aiohttp loop and wrk.
    # Variants: http, tcp, https (loopback nginx by IP literal) and slow-dns (a name per target,
    # a server that answers after BENCH_SLOW_LO_MS-BENCH_SLOW_HI_MS; see scenarios/agent.py).
    agent_targets: int = field(default_factory=lambda: _int("BENCH_AGENT_TARGETS", 30_000))
    agent_window_s: float = field(default_factory=lambda: _float("BENCH_AGENT_WINDOW_S", 6.0))
    concurrency: int = field(default_factory=lambda: _int("BENCH_CONCURRENCY", 100))
    agent_variants: tuple[str, ...] = field(
        default_factory=lambda: tuple(
            v.strip()
            for v in os.environ.get("BENCH_AGENT_VARIANTS", "http,tcp,https,slow-dns").split(",")
            if v.strip()
        )
    )
    # system (issue 18: capacity is found, not assumed). Offered load steps up from
    # BENCH_SYSTEM_TARGETS by BENCH_SYSTEM_STEP_TARGETS (targets at BENCH_SYSTEM_INTERVAL_S) until
    # a step fails (completion < 98% or p99 lateness > 1 s in any window) or would pass
    # BENCH_SYSTEM_MAX_TARGETS; then 2x the capacity found is offered. Each step: a warm-up
    # (default two intervals), then BENCH_SYSTEM_WINDOWS windows of BENCH_SYSTEM_WINDOW_S
    # (default one interval; rounded up to whole intervals) - 5 minutes by default, 30 with
    # BENCH_SOAK=1 (`make bench SOAK=1`).
    system_interval_s: int = field(default_factory=lambda: _int("BENCH_SYSTEM_INTERVAL_S", 60))
    system_targets: int = field(default_factory=lambda: _int("BENCH_SYSTEM_TARGETS", 60_000))
    system_step_targets: int = field(
        default_factory=lambda: _int("BENCH_SYSTEM_STEP_TARGETS", 30_000)
    )
    system_max_targets: int = field(
        default_factory=lambda: _int("BENCH_SYSTEM_MAX_TARGETS", 360_000)
    )
    soak: bool = field(default_factory=lambda: os.environ.get("BENCH_SOAK", "") == "1")
    system_windows_raw: int = field(default_factory=lambda: _int("BENCH_SYSTEM_WINDOWS", 0))
    system_window_raw: float = field(default_factory=lambda: _float("BENCH_SYSTEM_WINDOW_S", 0))
    system_warmup_raw: float = field(default_factory=lambda: _float("BENCH_SYSTEM_WARMUP_S", -1))
    # 0 skips the 2x-capacity step.
    system_overload: bool = field(
        default_factory=lambda: os.environ.get("BENCH_SYSTEM_OVERLOAD", "1") != "0"
    )
    # Agent processes (``vigil-agent --processes N``) in the system scenario.
    system_agent_processes: int = field(
        default_factory=lambda: max(1, _int("BENCH_SYSTEM_AGENT_PROCESSES", 1))
    )
    # http: nginx by IP literal. slow-dns: every target its own name, resolved by the bench's DNS
    # server (TTL BENCH_DNS_TTL s; below the interval, so each check resolves), on a server that
    # answers after BENCH_SLOW_LO_MS-BENCH_SLOW_HI_MS.
    system_variant: str = field(
        default_factory=lambda: os.environ.get("BENCH_SYSTEM_VARIANT", "http").strip() or "http"
    )
    dns_ttl: int = field(default_factory=lambda: _int("BENCH_DNS_TTL", 30))
    slow_lo_ms: float = field(default_factory=lambda: _float("BENCH_SLOW_LO_MS", 50.0))
    slow_hi_ms: float = field(default_factory=lambda: _float("BENCH_SLOW_HI_MS", 200.0))

    @property
    def system_windows(self) -> int:
        if self.system_windows_raw > 0:
            return self.system_windows_raw
        return 30 if self.soak else 5

    @property
    def system_window_s(self) -> float:
        """Whole intervals, so that every target has the same number of slots in a window."""
        raw = self.system_window_raw if self.system_window_raw > 0 else self.system_interval_s
        return float(max(1, math.ceil(raw / self.system_interval_s)) * self.system_interval_s)

    @property
    def system_warmup_s(self) -> float:
        return (
            self.system_warmup_raw if self.system_warmup_raw >= 0 else 2.0 * self.system_interval_s
        )

    # ingest: agents (each its own token and connection) that lease and post concurrently,
    # results per POST (an agent's batch; at most the protocol's 1,000), targets made due per
    # round, and the measured time per run (at least 30 s: a short burst before the worker's
    # first rollup run would leave its cost out).
    ingest_agents: int = field(
        default_factory=lambda: max(
            1, _int("BENCH_INGEST_AGENTS", _int("BENCH_INGEST_CONCURRENCY", 4))
        )
    )
    ingest_batch: int = field(
        default_factory=lambda: min(1_000, max(1, _int("BENCH_INGEST_BATCH", 200)))
    )
    ingest_rows: int = field(default_factory=lambda: _int("BENCH_INGEST_ROWS", 2_000))
    ingest_seconds: float = field(
        default_factory=lambda: max(30.0, _float("BENCH_INGEST_SECONDS", 30.0))
    )
    # reads: other targets with BENCH_READS_HISTORY_MIN minutes of one-minute history each
    # (issue 18: 60,000), checked by a real agent at 60 s with the worker on while reads run.
    reads_targets: int = field(default_factory=lambda: _int("BENCH_READS_TARGETS", 60_000))
    reads_history_min: int = field(default_factory=lambda: _int("BENCH_READS_HISTORY_MIN", 60))
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
    # notify: the outage's quiet window (the probe's quiet p99 needs >= 100 samples) and the
    # probe's period: at 0.2 s the ~15 s outage window held 62-72 samples (its p99 then is its
    # maximum), at 0.1 s 101 (and the quiet window 251). API processes (1 or 2) and the
    # worker's niceness (0: as the others).
    notify_quiet_s: float = field(default_factory=lambda: _float("BENCH_NOTIFY_QUIET_S", 30.0))
    notify_probe_every_s: float = field(
        default_factory=lambda: _float("BENCH_NOTIFY_PROBE_EVERY_S", 0.1)
    )
    notify_api_workers: int = field(
        default_factory=lambda: max(1, _int("BENCH_NOTIFY_API_WORKERS", 1))
    )
    notify_worker_nice: int = field(default_factory=lambda: _int("BENCH_NOTIFY_WORKER_NICE", 0))
    # pg_stat_statements in the bench's embedded PostgreSQL; ingest and system report the top
    # statements by total time per check (bench/statements.py).
    pg_statements: bool = field(
        default_factory=lambda: os.environ.get("BENCH_PG_STATEMENTS", "") == "1"
    )
    # PostgreSQL with fsync off (faster, not what a deployment runs).
    pg_fast: bool = field(default_factory=lambda: os.environ.get("BENCH_PG_FAST", "") == "1")
