"""The transactional outbox: the incident engine calls these in the transaction that opens or
closes an incident, so a notification exists exactly when the incident change committed."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import AsyncConnection

from control_plane.db.sql import Queries

Q = Queries.beside(__file__, "outbox")


async def incident_opened(conn: AsyncConnection[Any], incident_id: uuid.UUID) -> None:
    """One ``open`` row per channel bound to the incident's target and enabled."""
    await conn.execute(Q.enqueue_open, {"incident_id": incident_id})


async def incident_closed(conn: AsyncConnection[Any], incident_id: uuid.UUID) -> None:
    """One ``recovery`` row per channel told of the open, when the target announces
    recoveries (``notify_recovery``)."""
    await conn.execute(Q.enqueue_recovery, {"incident_id": incident_id})
