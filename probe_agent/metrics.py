"""The agent's Prometheus metrics, on a registry of its own (served on ``/metrics`` if asked).

The series updated for every check (``vigil_agent_checks_total``, its duration histogram and the
lateness of every leased slot) are plain counts kept by the event loop and turned into series
only when scraped (``_PerCheck``): ``prometheus_client``'s own take a lock and walk the buckets
in Python on every update, a few per cent of the agent's CPU at thousands of checks a second.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    start_http_server,
)
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

_DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)


def _le(bound: float) -> str:
    """A bucket's ``le`` label as prometheus_client writes it (``0.05``, ``1.0``, ``+Inf``)."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


class _Buckets:
    """One histogram's counts: per bucket (not cumulative; the last is +Inf) and their sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(float(b) for b in bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        # The first bound >= value: Prometheus buckets are "less than or equal".
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        counts = list(self.counts)  # one copy: the loop may add to it meanwhile
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), counts, strict=True):
            running += n
            out.append((_le(bound), float(running)))
        return out


class _PerCheck(Collector):
    """The per-check series, counted without locks by the event loop and read at scrape time
    (from the metrics server's thread: every read takes a copy first)."""

    def __init__(self) -> None:
        self.checks: dict[tuple[str, str], int] = {}
        self.durations: dict[str, _Buckets] = {}
        self.lateness = _Buckets(_LATENESS_BUCKETS)

    def collect(self) -> Iterator[Metric]:
        checks = CounterMetricFamily(
            "vigil_agent_checks",
            "Checks run, by kind and result status.",
            labels=["kind", "status"],
        )
        for (kind, status), n in list(self.checks.items()):
            checks.add_metric([kind, status], float(n))
        yield checks
        durations = HistogramMetricFamily(
            "vigil_agent_check_duration_seconds",
            "Wall time of one check, by kind.",
            labels=["kind"],
        )
        for kind, buckets in list(self.durations.items()):
            durations.add_metric([kind], buckets.cumulative(), buckets.total)
        yield durations
        lateness = HistogramMetricFamily(
            "vigil_agent_lease_lateness_seconds",
            "How late each slot was when leased (control plane clock: server_time - scheduled_at).",
        )
        lateness.add_metric([], self.lateness.cumulative(), self.lateness.total)
        yield lateness


class AgentMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        # The standard process_* and python_* series (read at scrape time).
        for standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(standard)
        self._per_check = _PerCheck()
        self.registry.register(self._per_check)
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

    def observe_check(self, kind: str, status: str, seconds: float) -> None:
        per = self._per_check
        key = (kind, status)
        per.checks[key] = per.checks.get(key, 0) + 1
        duration = per.durations.get(kind)
        if duration is None:
            duration = per.durations[kind] = _Buckets(_DURATION_BUCKETS)
        duration.observe(seconds)

    def observe_lease_lateness(self, seconds: float) -> None:
        self._per_check.lateness.observe(max(0.0, seconds))

    def track_inflight(self, count: Callable[[], float]) -> None:
        """``vigil_agent_inflight`` reads ``count()`` when scraped."""
        self.inflight.set_function(count)

    def track_spool(self, size_bytes: Callable[[], float]) -> None:
        self.spool_bytes.set_function(size_bytes)

    def serve(self, host: str, port: int) -> tuple[WSGIServer, Thread]:
        """Serve ``/metrics`` from a background thread; ``server.shutdown()`` stops it."""
        return start_http_server(port, addr=host, registry=self.registry)
