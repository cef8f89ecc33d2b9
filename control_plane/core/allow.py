"""``Allow`` on OPTIONS answers lists every method of the route.

Litestar gives each route an OPTIONS handler that lists the methods of the route as it stood when
the handler was made; a route whose handlers are gathered in steps (a controller's handlers, then
its router's) keeps the first, partial list (``OPTIONS /api/v1/targets`` said ``OPTIONS, POST``).
This middleware writes the route's whole list instead. (405 answers already carry the right one.)
"""

from __future__ import annotations

from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send


def _allowed(app: Any, template: str) -> bytes | None:
    table: dict[str, bytes] | None = getattr(app.state, "allow_by_route", None)
    if table is None:
        table = {}
        for route in app.routes:
            methods = getattr(route, "methods", None)
            if methods and route.scope_type == ScopeType.HTTP:
                table[route.path_format] = ", ".join(sorted(methods)).encode("ascii")
        app.state.allow_by_route = table
    return table.get(template)


def allow_header_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope.get("method") != "OPTIONS":
            await app(scope, receive, send)
            return
        allowed = _allowed(scope["app"], str(scope.get("path_template", "")))

        async def send_with_allow(message: Message) -> None:
            if allowed is not None and message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                message["headers"] = [*headers, (b"allow", allowed)]
            await send(message)

        await app(scope, receive, send_with_allow)

    return middleware
