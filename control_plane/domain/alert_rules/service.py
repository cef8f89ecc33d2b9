"""Alert rules: the service owns the transactions; every query is scoped to the org.

A rule binds notification channels of the org, a severity and a threshold (consecutive failing
checks) to targets by id or by tag; a target tagged after the rule was made is covered without
editing it. This slice stores and validates rules; ``rules_for_target`` is what delivery reads
(the notifications work applies them next to a target's own ``alerts``, each channel notified
once per event).
"""

from __future__ import annotations

import uuid
from typing import Any

from msgspec import UNSET
from psycopg import AsyncConnection

from control_plane.core.errors import ApiError
from control_plane.core.ids import new_id
from control_plane.core.service import TenantService
from control_plane.db.sql import Queries

from .schemas import AlertRule, AlertRuleCreate, AlertRuleUpdate, ApplyTo

Q = Queries.beside(__file__)


def rule_not_found() -> ApiError:
    return ApiError(404, "ALERT_RULE_NOT_FOUND", "alert rule not found")


def _rule(row: dict[str, Any]) -> AlertRule:
    return AlertRule(
        id=row["id"],
        name=row["name"],
        channels=list(row["channel_ids"]),
        severity=row["severity"],
        threshold=row["threshold"],
        apply_to=ApplyTo(target_ids=list(row["target_ids"]), tags=list(row["tags"])),
        enabled=row["enabled"],
        write_source=row["write_source"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def rules_for_target(
    conn: AsyncConnection[Any], target_id: uuid.UUID
) -> list[dict[str, Any]]:
    """The enabled rules that apply to a target: ``id``, ``severity``, ``threshold``,
    ``channel_ids`` (for delivery)."""
    return list(await (await conn.execute(Q.rules_for_target, {"target_id": target_id})).fetchall())


class AlertRuleService(TenantService):
    async def _owned(
        self,
        conn: AsyncConnection[Any],
        query: str,
        ids: list[uuid.UUID],
        code: str,
        pointer: str,
        what: str,
    ) -> list[uuid.UUID]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        rows = await (
            await conn.execute(query, {"org_id": self.org.org_id, "ids": wanted})
        ).fetchall()
        found = {r["id"] for r in rows}
        for i, one in enumerate(ids):
            if one not in found:
                raise ApiError(400, code, f"{what} {one} does not exist", f"{pointer}/{i}")
        return wanted

    async def _channels(self, conn: AsyncConnection[Any], ids: list[uuid.UUID]) -> list[uuid.UUID]:
        return await self._owned(
            conn, Q.org_channels, ids, "INVALID_ALERT_CONFIG", "/channels", "notification channel"
        )

    async def _apply_to(self, conn: AsyncConnection[Any], apply: ApplyTo) -> ApplyTo:
        if not apply.target_ids and not apply.tags:
            raise ApiError(
                400,
                "INVALID_APPLY_TO",
                "apply_to needs at least one target id or tag",
                "/apply_to",
            )
        targets = await self._owned(
            conn,
            Q.org_targets,
            apply.target_ids,
            "INVALID_APPLY_TO",
            "/apply_to/target_ids",
            "target",
        )
        return ApplyTo(target_ids=targets, tags=list(dict.fromkeys(apply.tags)))

    async def _fetch(self, conn: AsyncConnection[Any], rule_id: uuid.UUID) -> AlertRule:
        row = await (
            await conn.execute(Q.get_rule, {"org_id": self.org.org_id, "id": rule_id})
        ).fetchone()
        if row is None:
            raise rule_not_found()
        return _rule(row)

    async def _bind(
        self,
        conn: AsyncConnection[Any],
        rule_id: uuid.UUID,
        channels: list[uuid.UUID] | None,
        targets: list[uuid.UUID] | None,
    ) -> None:
        if channels is not None:
            await conn.execute(Q.clear_channels, {"id": rule_id})
            await conn.execute(Q.add_channels, {"id": rule_id, "ids": channels})
        if targets is not None:
            await conn.execute(Q.clear_targets, {"id": rule_id})
            if targets:
                await conn.execute(Q.add_targets, {"id": rule_id, "ids": targets})

    async def create(self, body: AlertRuleCreate, write_source: str) -> AlertRule:
        conn = await self.conn()
        async with conn.transaction():
            channels = await self._channels(conn, body.channels)
            apply = await self._apply_to(conn, body.apply_to)
            rule_id = new_id()
            await conn.execute(
                Q.insert_rule,
                {
                    "id": rule_id,
                    "org_id": self.org.org_id,
                    "name": body.name,
                    "threshold": body.threshold,
                    "severity": body.severity,
                    "tags": apply.tags,
                    "enabled": body.enabled,
                    "write_source": write_source,
                },
            )
            await self._bind(conn, rule_id, channels, apply.target_ids)
            created = await self._fetch(conn, rule_id)
            await self.audit(conn, "alert_rule.create", "alert_rule", rule_id, after=created)
            return created

    async def get(self, rule_id: uuid.UUID) -> AlertRule:
        return await self._fetch(await self.conn(), rule_id)

    async def page(
        self, target_id: uuid.UUID | None, limit: int, offset: int
    ) -> tuple[list[AlertRule], int]:
        conn = await self.conn()
        params = {
            "org_id": self.org.org_id,
            "target_id": target_id,
            "limit": limit,
            "offset": offset,
        }
        rows = await (await conn.execute(Q.rules_page, params)).fetchall()
        if rows:
            total = int(rows[0]["total"])
        else:
            count = await (await conn.execute(Q.rules_count, params)).fetchone()
            total = int(count["total"]) if count else 0
        return [_rule(r) for r in rows], total

    async def update(
        self, rule_id: uuid.UUID, body: AlertRuleUpdate, write_source: str
    ) -> AlertRule:
        conn = await self.conn()
        async with conn.transaction():
            locked = await (
                await conn.execute(Q.lock_rule, {"org_id": self.org.org_id, "id": rule_id})
            ).fetchone()
            if locked is None:
                raise rule_not_found()
            before = await self._fetch(conn, rule_id)
            channels = None
            if body.channels is not UNSET:
                channels = await self._channels(conn, body.channels)
            apply = before.apply_to
            targets = None
            if body.apply_to is not UNSET:
                apply = await self._apply_to(conn, body.apply_to)
                targets = apply.target_ids
            await conn.execute(
                Q.update_rule,
                {
                    "org_id": self.org.org_id,
                    "id": rule_id,
                    "name": before.name if body.name is UNSET else body.name,
                    "threshold": before.threshold if body.threshold is UNSET else body.threshold,
                    "severity": before.severity if body.severity is UNSET else body.severity,
                    "tags": apply.tags,
                    "enabled": before.enabled if body.enabled is UNSET else body.enabled,
                    "write_source": write_source,
                },
            )
            await self._bind(conn, rule_id, channels, targets)
            after = await self._fetch(conn, rule_id)
            await self.audit(
                conn, "alert_rule.update", "alert_rule", rule_id, before=before, after=after
            )
            return after

    async def delete(self, rule_id: uuid.UUID) -> None:
        conn = await self.conn()
        async with conn.transaction():
            before = await self._fetch(conn, rule_id)
            await conn.execute(Q.delete_rule, {"org_id": self.org.org_id, "id": rule_id})
            await self.audit(conn, "alert_rule.delete", "alert_rule", rule_id, before=before)
