"""Cache-Control (and the JSON charset) on every /api/v1 response, errors included.

mutations (POST/PUT/PATCH/DELETE) -> ``no-store``; /api/v1/dashboard/summary -> ``private,
max-age=5``; every other read -> ``private, max-age=10``.
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

MUTATIONS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The public surface (/api/public/v1: published status pages), shared caches welcome.
PUBLIC = "public, max-age=10, stale-while-revalidate=30"
PUBLIC_PREFIX = "/api/public/"


def cache_control_for(method: str, path: str) -> str:
    if path.startswith(PUBLIC_PREFIX):
        return PUBLIC
    if method.upper() in MUTATIONS:
        return "no-store"
    if path.rstrip("/") == "/api/v1/dashboard/summary":
        return "private, max-age=5"
    return "private, max-age=10"


def cache_control_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or not scope["path"].startswith(
            ("/api/v1/", PUBLIC_PREFIX)
        ):
            await app(scope, receive, send)
            return
        value = cache_control_for(str(scope.get("method", "GET")), scope["path"]).encode()

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = []
                for k, v in message.get("headers", []):
                    key = k.lower()
                    if key == b"cache-control":
                        continue
                    if key == b"content-type" and v == b"application/json":
                        # The reference: every response is ``application/json; charset=utf-8``.
                        v = b"application/json; charset=utf-8"
                    headers.append((k, v))
                headers.append((b"cache-control", value))
                message["headers"] = headers
            await send(message)

        await app(scope, receive, send_with_header)

    return middleware
