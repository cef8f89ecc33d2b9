"""The events webhooks subscribe to, written into the notification outbox in the transaction
of the change that causes them (the caller's connection, inside its transaction).

Each event gets one stable id (UUIDv7; for maintenance events, derived from the window) that
every subscription receives and retries keep: the receiver's dedup key.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection

from control_plane.core.ids import new_id
from control_plane.db.sql import Queries

Q = Queries.beside(__file__)

EVENTS = (
    "monitor.created",
    "monitor.updated",
    "monitor.deleted",
    "monitor.down",
    "monitor.up",
    "incident.opened",
    "incident.acknowledged",
    "incident.resolved",
    "incident.updated",
    "maintenance.started",
    "maintenance.ended",
)


async def target(conn: AsyncConnection[Any], target_id: uuid.UUID, event: str) -> None:
    """``monitor.created`` / ``monitor.updated`` / ``monitor.deleted`` (call before deleting)."""
    await targets(conn, [target_id], event)


async def targets(conn: AsyncConnection[Any], target_ids: list[uuid.UUID], event: str) -> None:
    """The same event for many targets (bulk operations), each with its own id."""
    assert event in EVENTS
    if target_ids:
        await conn.execute(
            Q.emit_target,
            {
                "target_ids": target_ids,
                "event_ids": [new_id() for _ in target_ids],
                "event": event,
            },
        )


async def incident(
    conn: AsyncConnection[Any],
    incident_id: uuid.UUID,
    event: str,
    *,
    only_unresolved: bool = False,
) -> None:
    """``monitor.down`` / ``monitor.up`` / ``incident.*`` for one incident."""
    await incidents(conn, [incident_id], event, only_unresolved=only_unresolved)


async def incidents(
    conn: AsyncConnection[Any],
    incident_ids: Sequence[uuid.UUID],
    event: str,
    *,
    only_unresolved: bool = False,
) -> None:
    """The same event for many incidents (the engine's chunk), each with its own id, in one
    statement."""
    assert event in EVENTS
    if incident_ids:
        await conn.execute(
            Q.emit_incident,
            {
                "incident_ids": list(incident_ids),
                "event_ids": [new_id() for _ in incident_ids],
                "event": event,
                "only_unresolved": only_unresolved,
            },
        )


async def engine_opened(conn: AsyncConnection[Any], incident_id: uuid.UUID) -> None:
    """The engine opened an incident: the target went down."""
    await engine_opened_many(conn, [incident_id])


async def engine_opened_many(conn: AsyncConnection[Any], incident_ids: Sequence[uuid.UUID]) -> None:
    """The engine opened these incidents: their targets went down (per target, ``monitor.down``
    is written before ``incident.opened``)."""
    await incidents(conn, incident_ids, "monitor.down")
    await incidents(conn, incident_ids, "incident.opened")


async def engine_closed(conn: AsyncConnection[Any], incident_id: uuid.UUID) -> None:
    """The engine closed an incident: the target is up again (and the incident resolved,
    unless a person resolved it before)."""
    await engine_closed_many(conn, [incident_id])


async def engine_closed_many(conn: AsyncConnection[Any], incident_ids: Sequence[uuid.UUID]) -> None:
    """The engine closed these incidents (``monitor.up``, then ``incident.resolved``)."""
    await incidents(conn, incident_ids, "monitor.up")
    await incidents(conn, incident_ids, "incident.resolved", only_unresolved=True)


async def announce_maintenance(
    conn: AsyncConnection[Any], cancelled: uuid.UUID | None = None
) -> None:
    """``maintenance.started`` / ``maintenance.ended`` for the windows whose start or end the
    clock passed (run by the delivery job); with ``cancelled``, that window only, being deleted:
    if it had begun, it ends now."""
    await conn.execute(Q.announce_maintenance, {"cancelled": cancelled})
