"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from litestar import Request, get

from control_plane.core.auth import resources
from control_plane.core.errors import ApiError

READY_TIMEOUT_S = 2.0
log = structlog.get_logger("vigil.health")


@get("/healthz", operation_id="healthz", tags=["health"], cache_control=None)
async def healthz() -> dict[str, str]:
    """Liveness: 200 once the process is up."""
    return {"status": "ok"}


async def _probe(name: str, coro: Any) -> tuple[str, str | None]:
    try:
        await asyncio.wait_for(coro, READY_TIMEOUT_S)
        return name, None
    except Exception as exc:  # any failure means "not ready"
        return name, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _pg(request: Request[Any, Any, Any]) -> None:
    async with resources(request).db.connection(timeout=READY_TIMEOUT_S) as conn:
        await conn.execute("SELECT 1")


@get("/readyz", operation_id="readyz", tags=["health"])
async def readyz(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Readiness: pings PostgreSQL and Redis; 503 ``DEPENDENCY_DOWN`` if either is unreachable.

    The answer names which dependency is down; the reason (addresses, driver messages) only goes
    to the log, since this endpoint is unauthenticated.
    """
    res = resources(request)
    results = await asyncio.gather(
        _probe("postgres", _pg(request)), _probe("redis", res.redis.ping())
    )
    checks = {name: "ok" if err is None else "down" for name, err in results}
    failed = {name: err for name, err in results if err is not None}
    if failed:
        log.warning("dependency_down", **failed)
        raise ApiError(
            503,
            "DEPENDENCY_DOWN",
            f"unreachable: {', '.join(sorted(failed))}",
            details={"checks": checks},
        )
    return {"status": "ok", "checks": checks}
