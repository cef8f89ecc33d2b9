"""The transactional outbox: the incident engine calls these in the transaction that opens or
closes incidents, so a notification exists exactly when the incident change committed. A chunk's
incidents go in one statement (a mass outage opens thousands at once)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection

from control_plane.db.sql import Queries

Q = Queries.beside(__file__, "outbox")


async def incident_opened(conn: AsyncConnection[Any], incident_id: uuid.UUID) -> None:
    """One ``open`` row per channel bound to the incident's target and enabled."""
    await incidents_opened(conn, [incident_id])


async def incidents_opened(conn: AsyncConnection[Any], incident_ids: Sequence[uuid.UUID]) -> None:
    """``incident_opened`` for many incidents, in one statement."""
    if incident_ids:
        await conn.execute(Q.enqueue_open, {"incident_ids": list(incident_ids)})


async def incident_closed(conn: AsyncConnection[Any], incident_id: uuid.UUID) -> None:
    """One ``recovery`` row per channel told of the open, when the target announces
    recoveries (``notify_recovery``)."""
    await incidents_closed(conn, [incident_id])


async def incidents_closed(conn: AsyncConnection[Any], incident_ids: Sequence[uuid.UUID]) -> None:
    """``incident_closed`` for many incidents, in one statement."""
    if incident_ids:
        await conn.execute(Q.enqueue_recovery, {"incident_ids": list(incident_ids)})
