"""Per-request context: request id, structlog context, one access log line, HTTP metrics.

``RequestContext`` wraps the app's whole ASGI handler (not a route middleware), so it also sees
requests that match no route (404/405) and errors raised before any handler runs: every response
carries ``X-Request-ID`` and every error envelope its ``trace_id``.

The request id is the client's ``X-Request-ID`` when it is a sane token, else a new uuid4 hex. It is
stored in ``scope["state"]["request_id"]`` (the error envelope reads it there) and bound in
structlog's contextvars for the request. Auth puts ``org_id`` / ``agent_id`` in ``scope["state"]``
too; ``merge_request_state`` copies them into every log line of the request, even lines logged from
tasks that did not inherit the contextvars bound after they started.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable, MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from control_plane.core.observability.metrics import UNMATCHED_ROUTE, Metrics

REQUEST_ID_HEADER = b"x-request-id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Keys of ``scope["state"]`` that belong in every log line of the request.
LOG_KEYS = ("request_id", "org_id", "agent_id", "region")

_request_state: ContextVar[MutableMapping[str, Any] | None] = ContextVar(
    "vigil_request_state", default=None
)
access_log = structlog.get_logger("vigil.access")


def request_id_from(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The caller's ``X-Request-ID`` if it is a sane token, else a fresh one."""
    for name, value in headers:
        if name.lower() == REQUEST_ID_HEADER:
            try:
                candidate = value.decode("ascii")
            except UnicodeDecodeError:
                break
            if _SANE_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def merge_request_state(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: add the current request's id, org and agent to the event."""
    state = _request_state.get()
    if state is not None:
        for key in LOG_KEYS:
            if key in state and key not in event_dict:
                event_dict[key] = state[key]
    return event_dict


class RequestContext:
    """ASGI wrapper around the whole app (see the module docstring)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = str(scope.get("method", "GET")).upper()
        path = scope["path"]  # the router rewrites scope["path"] for mounted apps
        state: MutableMapping[str, Any] = scope.setdefault("state", {})  # type: ignore[typeddict-item]
        rid = request_id_from(scope.get("headers", ()))
        state["request_id"] = rid
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (k, v) for k, v in message.get("headers", ()) if k.lower() != REQUEST_ID_HEADER
                ]
                headers.append((REQUEST_ID_HEADER, rid.encode("ascii")))
                message["headers"] = headers
            await send(message)

        outer = structlog.contextvars.get_contextvars()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=rid)
        state_token = _request_state.set(state)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("path_template") or UNMATCHED_ROUTE
            self.metrics.observe_request(
                method if method in _METHODS else "OTHER", route, status, elapsed
            )
            log = access_log.error if status >= 500 else access_log.info
            log(
                "http_request",
                method=method,
                path=path,
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 3),
            )
            _request_state.reset(state_token)
            structlog.contextvars.clear_contextvars()
            structlog.contextvars.bind_contextvars(**outer)
