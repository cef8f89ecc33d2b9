"""Reads of incidents, for one target or the whole org.

Incidents are opened and closed by the incident engine (``engine.py``, run by the worker's jobs
in ``jobs.py``) under the rules of ``policy.py``; this service only reads them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from psycopg.rows import dict_row

from control_plane.core import csv_export
from control_plane.core.service import TenantService
from control_plane.core.timerange import TimeRange
from control_plane.db.sql import Queries
from control_plane.domain.targets.service import ensure_target

from .schemas import Incident

Q = Queries.beside(__file__, "reads")


def _incident(row: dict[str, Any]) -> Incident:
    ended = row["ended_at"]
    return Incident(
        id=row["id"],
        target_id=row["target_id"],
        started_at=row["started_at"],
        ended_at=ended,
        status=row["status"],
        duration_secs=int((ended - row["started_at"]).total_seconds()) if ended else None,
        check_count=row["check_count"],
        error_sample=row["cause"],
        regions=list(row["regions"]),
    )


class IncidentService(TenantService):
    async def export(
        self, span: TimeRange, *, target_id: uuid.UUID | None, ongoing_only: bool
    ) -> AsyncIterator[Incident]:
        """Every incident ``page`` would list, read as the CSV is sent (404 now if the target
        is not the org's)."""
        if target_id is not None:
            await ensure_target(await self.conn(), self.org.org_id, target_id)
        params = {
            "org_id": self.org.org_id,
            "target_id": target_id,
            "from": span.start,
            "to": span.end,
            "ongoing_only": ongoing_only,
            "limit": None,
            "offset": 0,
        }
        return csv_export.stream_rows(
            self.res.db, Q.incidents_page, params, _incident, row_factory=dict_row
        )

    async def page(
        self,
        span: TimeRange,
        *,
        target_id: uuid.UUID | None,
        ongoing_only: bool,
        limit: int,
        offset: int,
    ) -> tuple[list[Incident], int]:
        """One page of the org's incidents overlapping the span, or of one of its targets' (404
        if it is not the org's), newest first."""
        conn = await self.conn()
        if target_id is not None:
            await ensure_target(conn, self.org.org_id, target_id)
        params = {
            "org_id": self.org.org_id,
            "target_id": target_id,
            "from": span.start,
            "to": span.end,
            "ongoing_only": ongoing_only,
            "limit": limit,
            "offset": offset,
        }
        rows = await (await conn.execute(Q.incidents_page, params)).fetchall()
        if rows:
            total = int(rows[0]["total"])
        else:
            count = await (await conn.execute(Q.incidents_count, params)).fetchone()
            total = int(count["total"]) if count else 0
        return [_incident(r) for r in rows], total
