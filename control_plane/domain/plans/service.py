"""Plans and their assignment to orgs (the operator's surface)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from psycopg import AsyncConnection, sql

from control_plane.core import audit
from control_plane.core.audit import Actor
from control_plane.core.errors import ApiError, not_found
from control_plane.core.service import Service
from control_plane.db.sql import Queries

from .schemas import LIMITS, Limits, OrgLimits, OrgPlanAssign, Plan, PlanCreate, PlanUpdate

Q = Queries.beside(__file__)


def plan_not_found() -> ApiError:
    return not_found("PLAN_NOT_FOUND", "plan")


def org_not_found() -> ApiError:
    return not_found("ORG_NOT_FOUND", "org")


def _limits(row: dict[str, Any]) -> Limits:
    return Limits(**{k: row[k] for k in LIMITS})


def _plan(row: dict[str, Any]) -> Plan:
    return Plan(
        id=row["id"],
        name=row["name"],
        orgs=int(row["orgs"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        **{k: row[k] for k in LIMITS},
    )


class PlanService(Service):
    async def list_page(self, *, limit: int, offset: int) -> tuple[list[Plan], int]:
        conn = await self.conn()
        rows = await (
            await conn.execute(Q.list_plans, {"limit": limit, "offset": offset})
        ).fetchall()
        if rows:
            return [_plan(r) for r in rows], int(rows[0]["total"])
        counted = await (await conn.execute(Q.count_plans)).fetchone()
        return [], int(counted["n"]) if counted else 0

    async def get(self, plan_id: str) -> Plan:
        row = await (await (await self.conn()).execute(Q.get_plan, {"id": plan_id})).fetchone()
        if row is None:
            raise plan_not_found()
        return _plan(row)

    async def create(self, body: PlanCreate) -> Plan:
        values = {"id": body.id, "name": body.name, **{k: getattr(body, k) for k in LIMITS}}
        query = sql.SQL(
            "INSERT INTO plans ({}) VALUES ({}) ON CONFLICT (id) DO NOTHING RETURNING id"
        ).format(
            sql.SQL(", ").join(map(sql.Identifier, values)),
            sql.SQL(", ").join(map(sql.Placeholder, values)),
        )
        conn = await self.conn()
        async with conn.transaction():
            row = await (await conn.execute(query, values)).fetchone()
            if row is None:
                raise ApiError(409, "PLAN_EXISTS", f"a plan {body.id!r} exists", "/id")
            plan = await self.get(body.id)
            await audit.record_operator(conn, self.meta, "plan.create", "plan", body.id, after=plan)
        return plan

    async def update(self, plan_id: str, body: PlanUpdate) -> Plan:
        changes = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not msgspec.UNSET}
        if not changes:
            return await self.get(plan_id)
        query = sql.SQL(
            "UPDATE plans SET {}, updated_at = now() WHERE id = %(id)s RETURNING id"
        ).format(
            sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in changes
            )
        )
        conn = await self.conn()
        async with conn.transaction():
            before = await self._locked(conn, plan_id)
            await conn.execute(query, {**changes, "id": plan_id})
            after = await self.get(plan_id)
            await audit.record_operator(
                conn, self.meta, "plan.update", "plan", plan_id, before=before, after=after
            )
        return after

    async def delete(self, plan_id: str) -> None:
        plan = await self.get(plan_id)
        if plan.orgs:
            raise ApiError(
                409,
                "PLAN_IN_USE",
                f"{plan.orgs} org(s) are on plan {plan_id!r}; move them first",
                details={"orgs": plan.orgs},
            )
        conn = await self.conn()
        async with conn.transaction():
            row = await (await conn.execute(Q.delete_plan, {"id": plan_id})).fetchone()
            if row is None:
                raise ApiError(409, "PLAN_IN_USE", f"an org moved onto plan {plan_id!r}")
            await audit.record_operator(
                conn, self.meta, "plan.delete", "plan", plan_id, before=plan
            )

    async def _locked(self, conn: AsyncConnection[Any], plan_id: str) -> Plan:
        """The plan as it is, its row locked until the transaction ends (a faithful before)."""
        if await (await conn.execute(Q.lock_plan, {"id": plan_id})).fetchone() is None:
            raise plan_not_found()
        return await self.get(plan_id)

    async def org_limits(self, org_id: uuid.UUID) -> OrgLimits:
        return await _org_limits(await self.conn(), org_id)

    async def assign(self, org_id: uuid.UUID, body: OrgPlanAssign) -> OrgLimits:
        conn = await self.conn()
        async with conn.transaction():
            if await (await conn.execute(Q.org_exists, {"org_id": org_id})).fetchone() is None:
                raise org_not_found()
            if await (await conn.execute(Q.get_plan, {"id": body.plan_id})).fetchone() is None:
                raise ApiError(422, "PLAN_NOT_FOUND", f"no plan {body.plan_id!r}", "/plan_id")
            before = await _org_limits(conn, org_id)
            await conn.execute(Q.set_org_plan, {"org_id": org_id, "plan_id": body.plan_id})
            await conn.execute(Q.clear_overrides, {"org_id": org_id})
            if body.overrides is not None:
                values = {"org_id": org_id, **{k: getattr(body.overrides, k) for k in LIMITS}}
                await conn.execute(
                    sql.SQL("INSERT INTO plan_overrides ({}) VALUES ({})").format(
                        sql.SQL(", ").join(map(sql.Identifier, values)),
                        sql.SQL(", ").join(map(sql.Placeholder, values)),
                    ),
                    values,
                )
            after = await _org_limits(conn, org_id)
            await audit.record(
                conn,
                org_id=org_id,
                actor=Actor("operator"),
                meta=self.meta,
                action="org.plan_assign",
                resource_type="org",
                resource_id=org_id,
                before=before,
                after=after,
            )
        return after


async def _org_limits(conn: AsyncConnection[Any], org_id: uuid.UUID) -> OrgLimits:
    row = await (await conn.execute(Q.org_limits, {"org_id": org_id})).fetchone()
    if row is None:
        raise org_not_found()
    over = await (await conn.execute(Q.org_overrides, {"org_id": org_id})).fetchone()
    return OrgLimits(
        org_id=org_id,
        plan_id=row["plan_id"],
        limits=_limits(row),
        overrides=None if over is None else _limits(over),
    )
