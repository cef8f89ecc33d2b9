"""Request ids, structured access logs, Prometheus metrics, Swagger UI.

``instrument(app)`` is called once by the app factory on the built app: it gives the app its own
``Metrics``, registers ``/metrics`` and the ``/docs`` pages, and wraps the whole ASGI handler in
``RequestContext`` so that every request (matched or not) gets an id, a log line and metrics.
"""

from __future__ import annotations

from litestar import Litestar

from control_plane.core.observability.docs import docs_handlers
from control_plane.core.observability.metrics import Metrics, metrics_endpoint, metrics_of
from control_plane.core.observability.openapi import (
    OPENAPI_PATH,
    EnvelopeJsonRenderPlugin,
    openapi_router,
)
from control_plane.core.observability.request_context import RequestContext, merge_request_state


def instrument(
    app: Litestar, metrics: Metrics | None = None, metrics_token: str | None = None
) -> Litestar:
    metrics = metrics or Metrics()
    app.state.metrics = metrics
    # /metrics answers only with this bearer token, when one is set.
    app.state.metrics_token = metrics_token
    for handler in (metrics_endpoint, *docs_handlers()):
        app.register(handler)
    app.asgi_handler = RequestContext(app.asgi_handler, metrics)
    return app


__all__ = [
    "OPENAPI_PATH",
    "EnvelopeJsonRenderPlugin",
    "Metrics",
    "instrument",
    "merge_request_state",
    "metrics_of",
    "openapi_router",
]
