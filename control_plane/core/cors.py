"""CORS on ``/api/v1`` through Litestar's CORS support (``CORSConfig``), per the reference.

Off by default (``VIGIL_CORS_ENABLED``). When on, ``/api/v1/*`` answers a preflight ``OPTIONS``
with ``Access-Control-Allow-Origin`` (the origin when it is among ``VIGIL_CORS_ALLOWED_ORIGINS``,
or any with ``VIGIL_CORS_ALLOW_ANY_ORIGIN``), ``Access-Control-Allow-Methods`` (the configured
list) and ``Access-Control-Allow-Headers``; a disallowed origin's preflight is a 400 and its
simple requests get no ``Access-Control-Allow-Origin``. Litestar would apply its CORS middleware
to every path; this runs it for ``/api/v1`` only, so ``/healthz`` and ``/readyz`` (and the agent,
operator and public surfaces) never carry CORS headers.
"""

from __future__ import annotations

from typing import Any

from litestar.config.cors import CORSConfig
from litestar.middleware._internal.cors import CORSMiddleware

from control_plane.settings import CorsSettings

PREFIX = "/api/v1/"
ALLOW_HEADERS = ["content-type", "authorization"]


def cors_config(settings: CorsSettings) -> CORSConfig | None:
    if not settings.enabled:
        return None
    return CORSConfig(
        allow_origins=["*"] if settings.allow_any_origin else list(settings.allowed_origins),
        allow_methods=list(settings.allowed_methods),  # type: ignore[arg-type]
        allow_headers=ALLOW_HEADERS,
        allow_credentials=False,
        max_age=600,
    )


def cors_middleware(settings: CorsSettings) -> Any:
    """The app middleware for ``settings`` (a pass-through when CORS is off)."""
    config = cors_config(settings)

    def factory(app: Any) -> Any:
        if config is None:
            return app
        with_cors = CORSMiddleware(app=app, config=config)

        async def middleware(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"].startswith(PREFIX):
                await with_cors(scope, receive, send)
            else:
                await app(scope, receive, send)

        return middleware

    return factory
