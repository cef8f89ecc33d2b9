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


async def incidents_opened(conn: AsyncConnection[Any], incident_ids: Sequence[uuid.UUID]) -> None:
    """One ``open`` row per incident and channel bound to its target and enabled, in one
    statement."""
    if incident_ids:
        await conn.execute(Q.enqueue_open, {"incident_ids": list(incident_ids)})


async def incidents_closed(conn: AsyncConnection[Any], incident_ids: Sequence[uuid.UUID]) -> None:
    """One ``recovery`` row per incident and channel told of the open, when the target
    announces recoveries (``notify_recovery``), in one statement."""
    if incident_ids:
        await conn.execute(Q.enqueue_recovery, {"incident_ids": list(incident_ids)})
