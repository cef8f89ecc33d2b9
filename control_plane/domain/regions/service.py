"""Regions: the operator-managed catalog of places agents probe from."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from msgspec import UNSET
from psycopg import AsyncConnection
from psycopg import errors as pg

from control_plane.core.db_errors import translate
from control_plane.core.errors import ApiError, not_found
from control_plane.core.service import Service, TenantService
from control_plane.core.text import clean_text
from control_plane.db.sql import Queries

from .schemas import Region, RegionCreate, RegionSummary, RegionUpdate

Q = Queries.beside(__file__)
log = structlog.get_logger("vigil.regions")
_REGION_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
MAX_NAME = 100
MAX_LOCATION = 200


def region_not_found() -> ApiError:
    return not_found("REGION_NOT_FOUND", "region")


def is_region_id(value: str) -> bool:
    """Whether ``value`` is shaped like a region id; nothing else can name a region."""
    return _REGION_ID.fullmatch(value) is not None


def _region_id(value: str) -> str:
    if not is_region_id(value):
        raise ApiError(
            400,
            "INVALID_REGION_ID",
            "region id must be 1 to 63 lowercase letters, digits or '-', not starting with '-'",
            "/id",
        )
    return value


def _name(value: str) -> str:
    return clean_text(value, field="/name", code="INVALID_NAME", max_len=MAX_NAME)


def _location(value: str) -> str:
    return clean_text(
        value,
        field="/location",
        code="INVALID_LOCATION",
        max_len=MAX_LOCATION,
        min_len=0,
        label="location",
    )


def _region(row: dict[str, Any]) -> Region:
    return Region(
        id=row["id"],
        name=row["name"],
        location=row["location"],
        enabled=row["enabled"],
        allow_private_targets=row["allow_private_targets"],
        access=row["access"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _in_use(region_id: str, usage: dict[str, Any] | None, **extra: Any) -> ApiError:
    targets = int(usage["targets"]) if usage else 0
    agents = int(usage["agents"]) if usage else 0
    return ApiError(
        409,
        "REGION_IN_USE",
        f"region '{region_id}' is still in use ({targets} target(s), {agents} agent(s))",
        details={"targets": targets, "agents": agents, **extra},
    )


@dataclass(frozen=True, slots=True)
class Access:
    """What one org may do with one region."""

    enabled: bool
    # Public, or granted to the org: else the region does not exist for it.
    visible: bool
    # The org may probe private addresses from the region.
    allow_private: bool


async def region_access(
    conn: AsyncConnection[Any], org_id: uuid.UUID, region_ids: list[str], allow_all_private: bool
) -> dict[str, Access]:
    """Each existing region of ``region_ids`` as ``org_id`` may use it (missing ones absent)."""
    ids = [r for r in region_ids if is_region_id(r)]
    if not ids:
        return {}
    params = {"org_id": org_id, "ids": ids, "allow_all_private": allow_all_private}
    rows = await (await conn.execute(Q.region_access, params)).fetchall()
    return {r["id"]: Access(r["enabled"], r["visible"], r["allow_private"]) for r in rows}


def require_usable(access: dict[str, Access], wanted: list[str], pointer: str) -> None:
    """Each of ``wanted`` must be a region the org may pick: one it may not see is a 404
    ``REGION_NOT_FOUND``, one that does not exist or is disabled a 400 ``UNKNOWN_REGION``;
    ``pointer`` is the field (``{i}`` is the region's index)."""
    for i, rid in enumerate(wanted):
        found = access.get(rid)
        if found is not None and not found.visible:
            raise ApiError(
                404, "REGION_NOT_FOUND", f"region '{rid}' not found", pointer.format(i=i)
            )
        if found is None or not found.enabled:
            raise ApiError(
                400,
                "UNKNOWN_REGION",
                f"region '{rid}' does not exist or is disabled",
                pointer.format(i=i),
            )


def private_allowed(access: dict[str, Access], regions: list[str]) -> bool:
    """Whether a check run from all of ``regions`` may reach private addresses."""
    return bool(regions) and all(
        (found := access.get(r)) is not None and found.allow_private for r in regions
    )


async def drop_ungranted_targets(
    conn: AsyncConnection[Any], region_id: str, org_id: uuid.UUID | None = None
) -> int:
    """Unbind the region from the targets of orgs (or of ``org_id``) it is not granted to;
    returns how many bindings went."""
    rows = await (
        await conn.execute(Q.drop_ungranted_targets, {"id": region_id, "org_id": org_id})
    ).fetchall()
    if rows:
        log.info("region_targets_unbound", region=region_id, targets=len(rows))
    return len(rows)


class RegionService(Service):
    """The operator's region catalog (no org: regions belong to the instance)."""

    async def create(self, data: RegionCreate) -> Region:
        conn = await self.conn()
        params = {
            "id": _region_id(data.id),
            "name": _name(data.name),
            "location": _location(data.location),
            "enabled": data.enabled,
            "allow_private_targets": data.allow_private_targets,
            "access": data.access,
        }
        row = await (await conn.execute(Q.insert_region, params)).fetchone()
        if row is None:
            raise ApiError(409, "REGION_EXISTS", f"region '{data.id}' already exists", "/id")
        return _region(row)

    async def get(self, region_id: str) -> Region:
        conn = await self.conn()
        if not is_region_id(region_id):
            raise region_not_found()
        row = await (await conn.execute(Q.get_region, {"id": region_id})).fetchone()
        if row is None:
            raise region_not_found()
        return _region(row)

    async def list_page(self, *, limit: int, offset: int) -> tuple[list[Region], int]:
        conn = await self.conn()
        params = {"limit": limit, "offset": offset}
        rows = await (await conn.execute(Q.list_regions, params)).fetchall()
        total = await (await conn.execute(Q.count_regions)).fetchone()
        return [_region(r) for r in rows], int(total["total"] if total else 0)

    async def update(self, region_id: str, data: RegionUpdate) -> Region:
        conn = await self.conn()
        if not is_region_id(region_id):
            raise region_not_found()
        async with conn.transaction():
            row = await (await conn.execute(Q.lock_region, {"id": region_id})).fetchone()
            if row is None:
                raise region_not_found()
            params = {
                "id": region_id,
                "name": row["name"] if data.name is UNSET else _name(data.name),
                "location": row["location"] if data.location is UNSET else _location(data.location),
                "enabled": row["enabled"] if data.enabled is UNSET else data.enabled,
                "allow_private_targets": row["allow_private_targets"]
                if data.allow_private_targets is UNSET
                else data.allow_private_targets,
                "access": row["access"] if data.access is UNSET else data.access,
            }
            updated = await (await conn.execute(Q.update_region, params)).fetchone()
            assert updated is not None
            if params["access"] == "restricted" and row["access"] != "restricted":
                # Orgs without a grant lose the region: their targets stop being probed there.
                await drop_ungranted_targets(conn, region_id)
            return _region(updated)

    async def delete(self, region_id: str) -> None:
        """Delete a region nothing references any more; else 409 ``REGION_IN_USE``."""
        conn = await self.conn()
        if not is_region_id(region_id):
            raise region_not_found()
        try:
            async with conn.transaction():
                row = await (await conn.execute(Q.lock_region, {"id": region_id})).fetchone()
                if row is None:
                    raise region_not_found()
                usage = await (await conn.execute(Q.region_usage, {"id": region_id})).fetchone()
                if usage and (usage["targets"] or usage["agents"]):
                    raise _in_use(region_id, usage)
                await conn.execute(Q.delete_region, {"id": region_id})
        except pg.ForeignKeyViolation as exc:
            # Some other table (results, rollups, …) still points at the region: the translated
            # error, with the counts the usage query can add.
            extra = translate(exc).details or {}
            usage = await (await conn.execute(Q.region_usage, {"id": region_id})).fetchone()
            raise _in_use(region_id, usage, **extra) from None


class RegionCatalog(TenantService):
    """The regions as one org sees them."""

    async def list_page(self, *, limit: int, offset: int) -> tuple[list[RegionSummary], int]:
        """The regions the org may pick: enabled, and public or granted to it."""
        conn = await self.conn()
        params = {
            "org_id": self.org.org_id,
            "allow_all_private": self.settings.security.allow_private_targets,
            "limit": limit,
            "offset": offset,
        }
        rows = await (await conn.execute(Q.list_org_regions, params)).fetchall()
        total = await (await conn.execute(Q.count_org_regions, params)).fetchone()
        items = [
            RegionSummary(
                id=r["id"],
                name=r["name"],
                location=r["location"],
                allow_private_targets=r["allow_private_targets"],
            )
            for r in rows
        ]
        return items, int(total["total"] if total else 0)
