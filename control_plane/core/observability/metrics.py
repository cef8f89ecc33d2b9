"""Prometheus metrics on a per-app registry, and the ``/metrics`` endpoint.

Each app gets its own ``CollectorRegistry`` (several apps live in one test process), so nothing is
registered on prometheus_client's global registry. Other modules add their own metrics through
the app's ``Metrics`` object (``metrics_of(request)``) with get-or-create semantics:

    hits = metrics_of(request).counter(
        "vigil_ingest_results_total", "check results stored", ["region"]
    )
    hits.labels(region=ctx.region_id).inc()

Names follow ``vigil_<subsystem>_<name>_<unit>``.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from typing import Any, TypeVar

from litestar import Request, Response, get
from litestar.connection import ASGIConnection
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from control_plane.core.errors import ApiError

# HTTP request latency buckets, in seconds; the agent's lease long-poll can hold a request ~30 s.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Route label of a request that matched no route: never the raw path (label cardinality).
UNMATCHED_ROUTE = "<unmatched>"
_NAME = re.compile(r"^vigil_[a-z0-9_]+$")

M = TypeVar("M", bound=MetricWrapperBase)


class Metrics:
    """One app's metrics: the registry plus the HTTP metrics the request middleware records."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        # The standard process_* and python_* series, as every Prometheus client exports them
        # (read at scrape time, so the same collectors may sit on several registries).
        for standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(standard)
        self._metrics: dict[str, MetricWrapperBase] = {}
        self.http_requests = self.counter(
            "vigil_http_requests_total",
            "HTTP requests answered, by method, route template and status",
            ("method", "route", "status"),
        )
        self.http_duration = self.histogram(
            "vigil_http_request_duration_seconds",
            "HTTP request duration in seconds, by method and route template",
            ("method", "route"),
            buckets=HTTP_BUCKETS,
        )

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        return self._get_or_create(Counter, name, documentation, labels)

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        return self._get_or_create(Gauge, name, documentation, labels)

    def histogram(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS,
    ) -> Histogram:
        return self._get_or_create(Histogram, name, documentation, labels, buckets=buckets)

    def register(self, collector: Collector) -> None:
        """Add a custom collector (e.g. one that reads gauges at scrape time)."""
        self.registry.register(collector)

    def _get_or_create(
        self,
        kind: type[M],
        name: str,
        documentation: str,
        labels: Sequence[str],
        **kwargs: Any,
    ) -> M:
        if not _NAME.match(name):
            raise ValueError(f"metric name {name!r} must match vigil_<subsystem>_<name>_<unit>")
        existing = self._metrics.get(name)
        if existing is not None:
            if type(existing) is not kind or tuple(existing._labelnames) != tuple(labels):
                raise ValueError(
                    f"metric {name!r} is already registered as {type(existing).__name__}"
                    f"{list(existing._labelnames)}"
                )
            return existing
        metric = kind(
            name, documentation, labelnames=tuple(labels), registry=self.registry, **kwargs
        )
        self._metrics[name] = metric
        return metric

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method=method, route=route, status=str(status)).inc()
        self.http_duration.labels(method=method, route=route).observe(seconds)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


def metrics_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Metrics:
    """The app's ``Metrics`` (installed by ``control_plane.core.observability.instrument``)."""
    metrics: Metrics = connection.app.state.metrics
    return metrics


@get("/metrics", include_in_schema=False, cache_control=None, sync_to_thread=False)
def metrics_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus scrape endpoint. With ``VIGIL_METRICS_TOKEN`` set, a scrape must bring it as
    a bearer token (Prometheus: ``authorization: {credentials: …}``); else it is a 401."""
    expected: str | None = getattr(request.app.state, "metrics_token", None)
    if expected is not None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.strip().encode(), expected.encode()
        ):
            raise ApiError(
                401,
                "UNAUTHORIZED",
                "missing or invalid metrics token",
                headers={"WWW-Authenticate": "Bearer"},
            )
    return Response(
        metrics_of(request).exposition(),
        media_type=CONTENT_TYPE_LATEST,
        headers={"Cache-Control": "no-store"},
    )
