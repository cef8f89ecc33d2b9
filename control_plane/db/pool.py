"""The async connection pool and helpers to read rows as dicts."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from control_plane.settings import DatabaseSettings


def make_pool(settings: DatabaseSettings) -> AsyncConnectionPool[AsyncConnection[Any]]:
    return AsyncConnectionPool(
        settings.url,
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        kwargs={"row_factory": dict_row, "autocommit": True},
        open=False,
        name="vigil",
    )
