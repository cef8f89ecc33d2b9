"""Process-wide resources opened by the app lifespan and handed to routes and services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from control_plane.monitoring.wakeups import Wakeups
from control_plane.security.sealing import Sealer
from control_plane.settings import Settings


@dataclass(slots=True)
class Resources:
    settings: Settings
    db: AsyncConnectionPool[AsyncConnection[Any]]
    redis: Redis
    sealer: Sealer
    # The arq queue (evaluation and delivery jobs); None only in tools that never enqueue.
    queue: ArqRedis | None = None
    # Wakes lease long-polls when an on-demand job is queued; None outside the API process.
    wakeups: Wakeups | None = None
