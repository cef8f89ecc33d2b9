"""Incident events, published to Redis (one channel per org) so any API replica can stream them.

Publishing is best effort and happens after the change committed: a live stream is a view, not
a record (the incident read is the record). Each event has a stable ``id`` (UUIDv7) for
receiver-side dedup and a ``type``: ``monitor.status`` (a target's current status changed:
``target_id``, ``status``, ``previous_status``, ``checked_at``), ``incident.opened``,
``incident.acknowledged``, ``incident.resolved``, ``incident.updated``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis

from control_plane.core.ids import new_id
from control_plane.settings import RedisSettings

log = structlog.get_logger("vigil.events")

EVENT_TYPES = (
    "monitor.status",
    "incident.opened",
    "incident.acknowledged",
    "incident.resolved",
    "incident.updated",
)


class Event(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    type: str
    org_id: uuid.UUID
    occurred_at: datetime
    data: dict[str, Any]


def channel(settings: RedisSettings, org_id: uuid.UUID) -> str:
    return f"{settings.prefix}events:{org_id}"


async def publish(
    redis: Redis, settings: RedisSettings, org_id: uuid.UUID, type_: str, data: Any
) -> None:
    """Publish one event to the org's channel; a Redis failure is logged, never raised."""
    event = Event(
        id=new_id(),
        type=type_,
        org_id=org_id,
        occurred_at=datetime.now(UTC),
        data=msgspec.to_builtins(data),
    )
    try:
        await redis.publish(channel(settings, org_id), msgspec.json.encode(event))
    except Exception as exc:
        log.warning("event_publish_failed", type=type_, org_id=str(org_id), error=str(exc))


async def publish_many(
    redis: Redis, settings: RedisSettings, events: list[tuple[uuid.UUID, str, Any]]
) -> None:
    """Publish (org_id, type, data) events in one round trip (a pipeline), in order; a Redis
    failure is logged, never raised."""
    if not events:
        return
    now = datetime.now(UTC)
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for org_id, type_, data in events:
                event = Event(
                    id=new_id(),
                    type=type_,
                    org_id=org_id,
                    occurred_at=now,
                    data=msgspec.to_builtins(data),
                )
                pipe.publish(channel(settings, org_id), msgspec.json.encode(event))
            await pipe.execute()
    except Exception as exc:
        log.warning("event_publish_failed", count=len(events), error=str(exc))
