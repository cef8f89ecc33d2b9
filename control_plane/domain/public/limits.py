"""The public surface's own limits, so a burst of anonymous traffic cannot crowd out ``/api/v1``.

Public requests are the published pages and share links: ``/`` (a custom domain), ``/status…``,
``/m/…`` and ``/api/public/…``. Two limits, neither touching a tenant's budgets:

* **per client address**: ``public_rate_per_minute`` requests a minute from one address (GCRA,
  the same Redis script as ``/api/v1``'s budgets, under its own ``rl:public:ip:`` keys), else 429
  ``RATE_LIMITED`` with scope ``per_ip_public`` and ``Retry-After``. Behind a reverse proxy the
  address is the one uvicorn takes from ``X-Forwarded-For`` (``--forwarded-allow-ips``). If
  Redis is down the limit is skipped (the pages still answer).
* **per process**: at most ``public_max_inflight`` public requests at once; past it a public
  request is refused at once with 503 ``PUBLIC_BUSY`` and ``Retry-After: 1``, so the event loop
  keeps room for the tenant API. A hot page is served from memory in well under a millisecond
  (``cache.py``), so the cap is only reached when the process is saturated.
"""

from __future__ import annotations

from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.exceptions import RedisError

from control_plane.core.errors import ApiError
from control_plane.core.ratelimit import SCRIPT, too_many

log = structlog.get_logger("vigil.public")

SCOPE = "per_ip_public"


def is_public(path: str) -> bool:
    return path == "/" or path == "/status" or path.startswith(("/status/", "/m/", "/api/public/"))


def busy() -> ApiError:
    return ApiError(
        503,
        "PUBLIC_BUSY",
        "the public status pages are busy; retry in 1 s",
        details={"retry_after_secs": 1},
        headers={"Retry-After": "1", "Cache-Control": "no-store"},
    )


class PublicLimiter:
    def __init__(self, redis: Any, prefix: str, per_minute: int) -> None:
        self.prefix = prefix
        self.per_minute = per_minute
        self._script = redis.register_script(SCRIPT)

    async def admit(self, ip: str) -> None:
        """Spend one request of ``ip``'s public budget; 429 when it is spent."""
        if self.per_minute <= 0:
            return
        try:
            status, _i, lim, value, reset_ms = await self._script(
                keys=["", "", f"{self.prefix}rl:public:ip:{ip}"],
                args=[0, self.per_minute, 60_000],
            )
        except (RedisError, OSError) as exc:
            log.warning("public_rate_limit_skipped", error=str(exc))
            return
        if int(status) == 0:
            err = too_many(SCOPE, int(lim), int(value), int(reset_ms))
            err.headers["Cache-Control"] = "no-store"  # never kept by a shared cache
            raise err


def public_limits_middleware(app: ASGIApp) -> ASGIApp:
    inflight = [0]
    # One limiter per started app (its Redis client lives as long as the lifespan's resources).
    limiter: list[tuple[Any, PublicLimiter]] = []

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or not is_public(scope["path"]):
            await app(scope, receive, send)
            return
        res = scope["litestar_app"].state.resources
        conf = res.settings.status_pages
        cap = int(conf.public_max_inflight)
        if cap > 0 and inflight[0] >= cap:
            raise busy()
        inflight[0] += 1
        try:
            if not limiter or limiter[0][0] is not res:
                limiter[:] = [
                    (
                        res,
                        PublicLimiter(
                            res.redis, res.settings.redis.prefix, conf.public_rate_per_minute
                        ),
                    )
                ]
            client = scope.get("client")
            await limiter[0][1].admit((client[0] if client else None) or "unknown")
            await app(scope, receive, send)
        finally:
            inflight[0] -= 1

    return middleware
