"""The agent's Prometheus metrics, on a registry of its own (served on ``/metrics`` if asked)."""

from __future__ import annotations

from collections.abc import Callable
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)

_DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)


class AgentMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        # The standard process_* and python_* series (read at scrape time).
        for standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(standard)
        self.checks = Counter(
            "vigil_agent_checks_total",
            "Checks run, by kind and result status.",
            ["kind", "status"],
            registry=self.registry,
        )
        self.check_duration = Histogram(
            "vigil_agent_check_duration_seconds",
            "Wall time of one check, by kind.",
            ["kind"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.spool_bytes = Gauge(
            "vigil_agent_spool_bytes",
            "Bytes of results waiting on disk for the control plane.",
            registry=self.registry,
        )
        self.spool_dropped = Counter(
            "vigil_agent_spool_dropped_total",
            "Results lost from the spool: oldest segments past the bound, unreadable lines.",
            registry=self.registry,
        )
        self.inflight = Gauge(
            "vigil_agent_inflight",
            "Checks running right now.",
            registry=self.registry,
        )
        self.ingest_errors = Counter(
            "vigil_agent_ingest_errors_total",
            "Failed ingest calls: 'unavailable' (retried or spooled), 'rejected' (batch dropped), "
            "'revoked' (token refused).",
            ["reason"],
            registry=self.registry,
        )

        self.lease_errors = Counter(
            "vigil_agent_lease_errors_total",
            "Failed lease calls: 'unavailable' (retried with backoff), 'rejected' (4xx).",
            ["reason"],
            registry=self.registry,
        )

        self.lease_lateness = Histogram(
            "vigil_agent_lease_lateness_seconds",
            "How late each slot was when leased (control plane clock: server_time - scheduled_at).",
            buckets=_LATENESS_BUCKETS,
            registry=self.registry,
        )
        self.overloaded = Gauge(
            "vigil_agent_overloaded",
            "1 while the agent keeps getting full lease batches of late slots (it is behind).",
            registry=self.registry,
        )
        self.overload_episodes = Counter(
            "vigil_agent_overload_episodes_total",
            "Times the agent became overloaded.",
            registry=self.registry,
        )

        # Labelled children, looked up once: ``labels()`` costs more than the update itself.
        self._check_counters: dict[tuple[str, str], Counter] = {}
        self._check_durations: dict[str, Histogram] = {}

    def observe_check(self, kind: str, status: str, seconds: float) -> None:
        counter = self._check_counters.get((kind, status))
        if counter is None:
            counter = self._check_counters[kind, status] = self.checks.labels(kind, status)
        counter.inc()
        duration = self._check_durations.get(kind)
        if duration is None:
            duration = self._check_durations[kind] = self.check_duration.labels(kind)
        duration.observe(seconds)

    def observe_lease_lateness(self, seconds: float) -> None:
        self.lease_lateness.observe(max(0.0, seconds))

    def track_inflight(self, count: Callable[[], float]) -> None:
        """``vigil_agent_inflight`` reads ``count()`` when scraped."""
        self.inflight.set_function(count)

    def track_spool(self, size_bytes: Callable[[], float]) -> None:
        self.spool_bytes.set_function(size_bytes)

    def serve(self, host: str, port: int) -> tuple[WSGIServer, Thread]:
        """Serve ``/metrics`` from a background thread; ``server.shutdown()`` stops it."""
        return start_http_server(port, addr=host, registry=self.registry)
