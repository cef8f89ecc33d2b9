"""Incidents: reads for one target or the whole org, the lifecycle (acknowledge, resolve) and the
public narration (title, description, severity, timeline updates).

Incidents are opened and closed by the incident engine (``engine.py``, run by the worker's jobs
in ``jobs.py``) under the rules of ``policy.py``. People move an incident's ``state``
(``open`` → ``acknowledged`` → ``resolved``); the engine's ``ended_at`` stays the truth about
the outage. A manual resolve of a target that is still failing is honoured (``state`` becomes
``resolved``, reminders stop) while the incident stays the target's open one for the engine, so
no new incident opens until the target has recovered and failed again.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from msgspec import UNSET
from psycopg.rows import dict_row

from control_plane.core import csv_export
from control_plane.core.errors import ApiError
from control_plane.core.ids import new_id
from control_plane.core.service import TenantService
from control_plane.core.timerange import TimeRange
from control_plane.db.sql import Queries
from control_plane.domain.events.stream import publish
from control_plane.domain.targets.service import ensure_target
from control_plane.domain.webhooks import events as webhook_events

from .schemas import (
    Incident,
    IncidentDetail,
    IncidentPatch,
    IncidentUpdate,
    IncidentUpdateCreate,
    LifecycleNote,
)

Q = Queries.beside(__file__, "reads")


def incident_not_found() -> ApiError:
    return ApiError(404, "INCIDENT_NOT_FOUND", "incident not found")


def derived_severity(status: str) -> str:
    return "critical" if status == "down" else "minor"


def _fields(row: dict[str, Any]) -> dict[str, Any]:
    ended = row["ended_at"]
    return {
        "id": row["id"],
        "target_id": row["target_id"],
        "started_at": row["started_at"],
        "ended_at": ended,
        "status": row["status"],
        "duration_secs": int((ended - row["started_at"]).total_seconds()) if ended else None,
        "check_count": row["check_count"],
        "error_sample": row["cause"],
        "regions": list(row["regions"]),
        "state": row["state"],
        "severity": row["severity"] or derived_severity(row["status"]),
        "severity_set": row["severity"] is not None,
        "public_title": row["public_title"],
        "public_description": row["public_description"],
        "acknowledged_at": row["acknowledged_at"],
        "acknowledged_by": row["acknowledged_by"],
        "acknowledge_note": row["acknowledge_note"],
        "resolved_at": row["resolved_at"],
        "resolved_by": row["resolved_by"],
        "resolve_note": row["resolve_note"],
        "in_maintenance": row["in_maintenance"],
    }


def _incident(row: dict[str, Any]) -> Incident:
    return Incident(**_fields(row))


class IncidentService(TenantService):
    @property
    def who(self) -> str:
        """The identity recorded on lifecycle changes and updates: ``user:<id>`` for a signed-in
        person, ``api_key:<id>`` for a key (the audit log's actor)."""
        actor = self.actor
        return f"{'user' if actor.type == 'session' else actor.type}:{actor.id}"

    async def _publish(self, type_: str, incident: IncidentDetail) -> None:
        """After the commit: tell the live stream (best effort, never fails the request)."""
        await publish(self.res.redis, self.settings.redis, self.org.org_id, type_, incident)

    async def export(
        self,
        span: TimeRange,
        *,
        target_id: uuid.UUID | None,
        ongoing_only: bool,
        states: list[str] | None = None,
        statuses: list[str] | None = None,
        severities: list[str] | None = None,
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
            "states": states,
            "statuses": statuses,
            "severities": severities,
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
        states: list[str] | None = None,
        statuses: list[str] | None = None,
        severities: list[str] | None = None,
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
            "states": states,
            "statuses": statuses,
            "severities": severities,
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

    async def _detail(self, incident_id: uuid.UUID, *, lock: bool = False) -> IncidentDetail:
        conn = await self.conn()
        params = {"org_id": self.org.org_id, "id": incident_id}
        row = await (
            await conn.execute(Q.lock_incident if lock else Q.get_incident, params)
        ).fetchone()
        if row is None:
            raise incident_not_found()
        updates = await (await conn.execute(Q.updates_of, params)).fetchall()
        return IncidentDetail(**_fields(row), updates=[IncidentUpdate(**u) for u in updates])

    async def get(self, incident_id: uuid.UUID) -> IncidentDetail:
        return await self._detail(incident_id)

    async def acknowledge(self, incident_id: uuid.UUID, body: LifecycleNote) -> IncidentDetail:
        """``open`` → ``acknowledged`` (reminders stop); 409 if it is past that already."""
        return await self._transition(
            incident_id,
            body,
            Q.acknowledge,
            "acknowledge",
            refused={
                "acknowledged": ("INCIDENT_ALREADY_ACKNOWLEDGED", "acknowledged already"),
                "resolved": ("INCIDENT_RESOLVED", "resolved already"),
            },
        )

    async def resolve(self, incident_id: uuid.UUID, body: LifecycleNote) -> IncidentDetail:
        """``open``/``acknowledged`` → ``resolved``, even while the target is still failing."""
        return await self._transition(
            incident_id,
            body,
            Q.resolve,
            "resolve",
            refused={"resolved": ("INCIDENT_ALREADY_RESOLVED", "resolved already")},
        )

    async def _transition(
        self,
        incident_id: uuid.UUID,
        body: LifecycleNote,
        query: str,
        action: str,
        refused: dict[str, tuple[str, str]],
    ) -> IncidentDetail:
        """One lifecycle step: refused (409) from the states listed, else recorded with who,
        when and the note, audited, and told to the live stream after the commit."""
        conn = await self.conn()
        async with conn.transaction():
            before = await self._detail(incident_id, lock=True)
            if before.state in refused:
                code, what = refused[before.state]
                raise ApiError(409, code, f"the incident is {what}")
            await conn.execute(
                query,
                {"org_id": self.org.org_id, "id": incident_id, "by": self.who, "note": body.note},
            )
            after = await self._detail(incident_id)
            await self.audit(
                conn, f"incident.{action}", "incident", incident_id, before=before, after=after
            )
            await webhook_events.incident(conn, incident_id, f"incident.{action}d")
        await self._publish(f"incident.{action}d", after)
        return after

    async def narrate(self, incident_id: uuid.UUID, body: IncidentPatch) -> IncidentDetail:
        """Set or clear (null) the public title, description and severity; omitted: unchanged."""
        conn = await self.conn()
        async with conn.transaction():
            before = await self._detail(incident_id, lock=True)
            await conn.execute(
                Q.narrate,
                {
                    "org_id": self.org.org_id,
                    "id": incident_id,
                    "set_title": body.public_title is not UNSET,
                    "public_title": None if body.public_title is UNSET else body.public_title,
                    "set_description": body.public_description is not UNSET,
                    "public_description": (
                        None if body.public_description is UNSET else body.public_description
                    ),
                    "set_severity": body.severity is not UNSET,
                    "severity": None if body.severity is UNSET else body.severity,
                },
            )
            after = await self._detail(incident_id)
            await self.audit(
                conn, "incident.update", "incident", incident_id, before=before, after=after
            )
            await webhook_events.incident(conn, incident_id, "incident.updated")
        await self._publish("incident.updated", after)
        return after

    async def add_update(
        self, incident_id: uuid.UUID, body: IncidentUpdateCreate
    ) -> IncidentDetail:
        """Append one entry to the public timeline; returns the incident with its timeline."""
        conn = await self.conn()
        async with conn.transaction():
            await self._detail(incident_id, lock=True)
            update_id = new_id()
            await conn.execute(
                Q.add_update,
                {
                    "id": update_id,
                    "incident_id": incident_id,
                    "org_id": self.org.org_id,
                    "phase": body.phase,
                    "message": body.message,
                    "created_by": self.who,
                },
            )
            after = await self._detail(incident_id)
            entry = next(u for u in after.updates if u.id == update_id)
            await self.audit(conn, "incident.add_update", "incident", incident_id, after=entry)
            await webhook_events.incident(conn, incident_id, "incident.updated")
        await self._publish("incident.updated", after)
        return after
