"""The async connection pool and helpers to read rows as dicts."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from control_plane.settings import DatabaseSettings


def make_pool(
    settings: DatabaseSettings, *, acquire_timeout: float | None = None
) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """The pool; ``acquire_timeout`` overrides the API's short wait for a connection (the
    worker is not waited on by anyone and may wait longer)."""
    return AsyncConnectionPool(
        settings.url,
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        # Short OLTP statements: JIT compilation costs more than it saves (75 ms per sweep seen).
        # Sessions in UTC: date_trunc() (rollup minutes and hours) does not depend on the server's
        # zone, and timestamps load as datetime.timezone.utc, which psycopg's C loader builds
        # about twice as fast as a ZoneInfo (a 1000-row /results page: ~4.5 -> ~2.3 ms).
        kwargs={
            "row_factory": dict_row,
            "autocommit": True,
            "options": "-c jit=off -c timezone=UTC",
        },
        open=False,
        name="vigil",
        # How long connection() waits for one; past it PoolTimeout, answered 503 by the API.
        timeout=acquire_timeout or settings.acquire_timeout_secs,
    )
