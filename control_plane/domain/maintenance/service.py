"""Maintenance windows: the service owns the transactions; every query is scoped to the org.

A window covers the org's chosen targets, or all of them, over [starts_at, ends_at). While it
is active, results are stored and incidents still open, but an incident that opens on a covered
target is marked ``in_maintenance`` by the engine (``incidents/queries/engine.sql``,
``open_incident``) and its notifications are held; the worker's sweep clears the mark when no
active window covers the target any more (``incidents/jobs.py``, ``release_maintenance``), which
releases (target still down) or drops (it recovered) the held notifications.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from msgspec import UNSET
from psycopg import AsyncConnection

from control_plane.core.errors import ApiError
from control_plane.core.ids import new_id
from control_plane.core.service import TenantService
from control_plane.db.sql import Queries
from control_plane.domain.webhooks import events as webhook_events

from .schemas import MaintenanceCreate, MaintenanceUpdate, MaintenanceWindow

Q = Queries.beside(__file__)


def window_not_found() -> ApiError:
    return ApiError(404, "MAINTENANCE_NOT_FOUND", "maintenance window not found")


def _status(row: dict[str, Any], now: datetime) -> str:
    if row["starts_at"] > now:
        return "upcoming"
    return "active" if row["ends_at"] > now else "past"


def _window(row: dict[str, Any], now: datetime) -> MaintenanceWindow:
    return MaintenanceWindow(
        id=row["id"],
        title=row["title"],
        description=row["description"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        all_targets=row["all_targets"],
        target_ids=list(row["target_ids"]),
        status=_status(row, now),
        write_source=row["write_source"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _check_range(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    if ends_at <= starts_at:
        raise ApiError(
            400,
            "BAD_TIME_RANGE",
            f"ends_at ({ends_at.isoformat()}) must be strictly after starts_at "
            f"({starts_at.isoformat()})",
            "/ends_at",
        )
    if ends_at <= now:
        raise ApiError(
            400,
            "BAD_TIME_RANGE",
            f"ends_at ({ends_at.isoformat()}) must be in the future: a window cannot be "
            "scheduled, or moved, into the past",
            "/ends_at",
        )


async def covering(
    conn: AsyncConnection[Any],
    org_id: uuid.UUID,
    target_id: uuid.UUID,
    start: datetime,
    end: datetime,
) -> list[tuple[datetime, datetime]]:
    """The parts of [start, end) that a window covering the target covers, merged, in order."""
    rows = await (
        await conn.execute(
            Q.covering, {"org_id": org_id, "target_id": target_id, "from": start, "to": end}
        )
    ).fetchall()
    merged: list[tuple[datetime, datetime]] = []
    for r in rows:
        a, b = r["starts_at"], r["ends_at"]
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


class MaintenanceService(TenantService):
    async def _now(self, conn: AsyncConnection[Any]) -> datetime:
        row = await (await conn.execute(Q.now)).fetchone()
        assert row is not None
        now: datetime = row["now"]
        return now

    async def _targets(self, conn: AsyncConnection[Any], ids: list[uuid.UUID]) -> list[uuid.UUID]:
        """The ids, deduplicated, each a target of the org (else 400 naming the first other)."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        found = {
            r["id"]
            for r in await (
                await conn.execute(Q.org_targets, {"org_id": self.org.org_id, "ids": wanted})
            ).fetchall()
        }
        for i, tid in enumerate(ids):
            if tid not in found:
                raise ApiError(
                    400,
                    "INVALID_TARGET_IDS",
                    f"target {tid} does not exist",
                    f"/target_ids/{i}",
                )
        return wanted

    async def _fetch(self, conn: AsyncConnection[Any], window_id: uuid.UUID) -> MaintenanceWindow:
        row = await (
            await conn.execute(Q.get_window, {"org_id": self.org.org_id, "id": window_id})
        ).fetchone()
        if row is None:
            raise window_not_found()
        return _window(row, await self._now(conn))

    async def create(self, body: MaintenanceCreate, write_source: str) -> MaintenanceWindow:
        conn = await self.conn()
        async with conn.transaction():
            _check_range(body.starts_at, body.ends_at, await self._now(conn))
            targets = await self._targets(conn, body.target_ids)
            window_id = new_id()
            await conn.execute(
                Q.insert_window,
                {
                    "id": window_id,
                    "org_id": self.org.org_id,
                    "title": body.title,
                    "description": body.description,
                    "starts_at": body.starts_at,
                    "ends_at": body.ends_at,
                    "all_targets": not targets,
                    "write_source": write_source,
                },
            )
            if targets:
                await conn.execute(Q.add_targets, {"id": window_id, "ids": targets})
            created = await self._fetch(conn, window_id)
            await self.audit(conn, "maintenance.create", "maintenance", window_id, after=created)
            return created

    async def get(self, window_id: uuid.UUID) -> MaintenanceWindow:
        return await self._fetch(await self.conn(), window_id)

    async def page(
        self, status: str | None, limit: int, offset: int
    ) -> tuple[list[MaintenanceWindow], int]:
        conn = await self.conn()
        params = {"org_id": self.org.org_id, "status": status, "limit": limit, "offset": offset}
        now = await self._now(conn)
        rows = await (await conn.execute(Q.windows_page, params)).fetchall()
        if rows:
            total = int(rows[0]["total"])
        else:
            count = await (await conn.execute(Q.windows_count, params)).fetchone()
            total = int(count["total"]) if count else 0
        return [_window(r, now) for r in rows], total

    async def update(
        self, window_id: uuid.UUID, body: MaintenanceUpdate, write_source: str
    ) -> MaintenanceWindow:
        """Edit a window that has not ended (409 MAINTENANCE_ENDED after its ``ends_at``)."""
        conn = await self.conn()
        async with conn.transaction():
            locked = await (
                await conn.execute(Q.lock_window, {"org_id": self.org.org_id, "id": window_id})
            ).fetchone()
            if locked is None:
                raise window_not_found()
            before = await self._fetch(conn, window_id)
            now = locked["now"]
            if before.ends_at <= now:
                raise ApiError(
                    409,
                    "MAINTENANCE_ENDED",
                    "the window has ended: a past window cannot be edited",
                )
            starts_at = before.starts_at if body.starts_at is UNSET else body.starts_at
            ends_at = before.ends_at if body.ends_at is UNSET else body.ends_at
            if body.starts_at is not UNSET or body.ends_at is not UNSET:
                _check_range(starts_at, ends_at, now)
            all_targets, targets = before.all_targets, before.target_ids
            if body.target_ids is not UNSET:
                targets = await self._targets(conn, body.target_ids or [])
                all_targets = not targets
                await conn.execute(Q.clear_targets, {"id": window_id})
                if targets:
                    await conn.execute(Q.add_targets, {"id": window_id, "ids": targets})
            await conn.execute(
                Q.update_window,
                {
                    "org_id": self.org.org_id,
                    "id": window_id,
                    "title": before.title if body.title is UNSET else body.title,
                    "description": (
                        before.description if body.description is UNSET else body.description
                    ),
                    "starts_at": starts_at,
                    "ends_at": ends_at,
                    "all_targets": all_targets,
                    "write_source": write_source,
                },
            )
            after = await self._fetch(conn, window_id)
            await self.audit(
                conn, "maintenance.update", "maintenance", window_id, before=before, after=after
            )
            return after

    async def delete(self, window_id: uuid.UUID) -> None:
        """Cancel a window (held notifications are released by the next sweep)."""
        conn = await self.conn()
        async with conn.transaction():
            before = await self._fetch(conn, window_id)
            # A window cancelled while active ends now for event webhooks (maintenance.ended).
            await webhook_events.announce_maintenance(conn, cancelled=window_id)
            await conn.execute(Q.delete_window, {"org_id": self.org.org_id, "id": window_id})
            await self.audit(conn, "maintenance.delete", "maintenance", window_id, before=before)
