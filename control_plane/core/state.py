"""Process-wide resources opened by the app lifespan (or the worker's start-up) and handed to
services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from arq.connections import ArqRedis
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from control_plane.core.draining import Draining
from control_plane.core.keycache import KeyCache
from control_plane.security.sealing import Sealer
from control_plane.settings import Settings

if TYPE_CHECKING:
    from control_plane.core.observability.monitoring import MonitoringMetrics
    from control_plane.core.ratelimit import Limiter


class RegionWaker(Protocol):
    """Cuts a lease long-poll short when work for its region is queued (the agent API's
    ``Wakeups`` is the implementation)."""

    async def sleep(self, region: str, secs: float) -> None: ...

    def wake(self, region: str) -> None: ...


@dataclass(slots=True)
class Resources:
    settings: Settings
    db: AsyncConnectionPool[AsyncConnection[Any]]
    redis: Redis
    sealer: Sealer
    # The arq queue (evaluation and delivery jobs); None only in tools that never enqueue.
    queue: ArqRedis | None = None
    # Wakes lease long-polls when an on-demand job is queued; None outside the API process.
    wakeups: RegionWaker | None = None
    # Counters of the monitoring loop (lease, ingest); None outside the API process.
    monitoring: MonitoringMetrics | None = None
    # Set when the process is asked to stop: waiting requests (lease long-polls) end at once.
    draining: Draining = field(default_factory=Draining)
    # Authenticated API keys this process remembers (core/keycache.py).
    key_cache: KeyCache = field(default_factory=KeyCache)
    # The rate limiter (core/ratelimit.py), built on first use by the auth check.
    limiter: Limiter | None = None
