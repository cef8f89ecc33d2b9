"""Fleet operations on targets: bulk create, bulk actions, pause and resume.

Bulk create is all-or-nothing: every item is decoded and validated exactly as ``POST
/targets`` validates one body (``TargetService._prepare``, then the org-dependent checks: alert
channels, private addresses, region policy). If any item fails, nothing is created and the 400
``BULK_VALIDATION_FAILED`` lists every failing item (``index``, ``status``, ``code``, ``field``
relative to the item, ``message``). The quota is checked once for the batch and the rows go in
with one multi-row statement per table; the region trigger schedules each target at its own
slot offset exactly as for a single create.

A bulk action applies one action to up to 10,000 ids in one transaction; ids that are not the
org's (another org's, none at all, not an id) fail with ``TARGET_NOT_FOUND`` and nothing of
theirs is touched; the rest succeed (or fail per id: a bulk update's interval below a kind's
floor, a tag list past its cap).
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from psycopg import AsyncConnection

from control_plane.core import abuse, quotas
from control_plane.core.decoding import decode_body, decode_error_to_api
from control_plane.core.errors import ApiError
from control_plane.core.ids import new_id, parse_uuid
from control_plane.domain.heartbeats.service import (
    HEARTBEAT,
    policy_sources,
    show_endpoints,
    sync_target,
)
from control_plane.domain.regions.service import private_allowed
from control_plane.domain.webhooks import events as webhook_events
from shared.checks import MAX_INTERVAL, CheckSpec

from . import validation as v
from .codec import redacted_check, redacted_checks
from .rows import Fields, policy_to_json, row_to_target
from .schemas import (
    MAX_BULK,
    ActionDelete,
    ActionDisable,
    ActionEnable,
    ActionTagAdd,
    ActionTagRemove,
    ActionUpdate,
    BulkFailure,
    BulkItemError,
    TagCount,
    Target,
    TargetBulkAction,
    TargetBulkActionResult,
    TargetCreate,
)
from .service import Q, TargetService, target_not_found


class _Envelope(msgspec.Struct, forbid_unknown_fields=True):
    targets: list[msgspec.Raw]


def bulk_size(n: int, field: str) -> None:
    if n == 0:
        raise ApiError(400, "BULK_EMPTY", "the request names no targets", field)
    if n > MAX_BULK:
        raise ApiError(
            400,
            "BULK_TOO_LARGE",
            f"at most {MAX_BULK} targets per request, got {n}",
            field,
            {"limit": MAX_BULK, "count": n},
        )


def decode_items(body: bytes) -> list[bytes]:
    """The raw JSON of each item of a bulk create (each is decoded on its own, strictly)."""
    if not body.strip():
        raise ApiError(400, "INVALID_JSON", "request body is empty; a JSON object is required")
    try:
        envelope = msgspec.json.decode(body, type=_Envelope)
    except msgspec.ValidationError as exc:
        raise decode_error_to_api(str(exc), field_codes={"/targets": "INVALID_BULK"}) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise decode_error_to_api(str(exc), malformed=True) from None
    except RecursionError:
        raise ApiError(400, "INVALID_JSON", "request body is not valid JSON") from None
    bulk_size(len(envelope.targets), "/targets")
    return [bytes(raw) for raw in envelope.targets]


def _item_error(index: int, err: ApiError) -> BulkItemError:
    return BulkItemError(
        index=index,
        status=err.status,
        code=err.code,
        field=err.field,
        message=err.message,
        details=err.details,
    )


class _Item(msgspec.Struct):
    index: int
    target_id: uuid.UUID
    data: TargetCreate
    fields: Fields
    channel_ids: list[str]


def _row_json(item: _Item) -> dict[str, Any]:
    f = item.fields
    return {
        "id": str(item.target_id),
        "name": f.name,
        "kind": f.kind,
        "spec": f.spec,
        "secrets": f.secrets,
        "interval_secs": f.interval,
        "enabled": f.enabled,
        "tags": f.tags,
        "alert_confirmations": f.alert_confirmations,
        "notify_recovery": f.notify_recovery,
        "renotify_interval_secs": f.renotify_interval_secs,
        "region_policy": policy_to_json(f.region_policy),
    }


class FleetService(TargetService):
    async def bulk_create(self, body: bytes, write_source: str) -> list[Target]:
        raws = decode_items(body)
        errors: list[BulkItemError] = []
        items: list[_Item] = []
        for index, raw in enumerate(raws):
            try:
                data = decode_body(raw, TargetCreate)
                target_id = new_id()
                fields = self._prepare(data, target_id)
                channel_ids = v.alert_channel_ids(data.alerts)
            except ApiError as err:
                errors.append(_item_error(index, err))
                continue
            items.append(_Item(index, target_id, data, fields, channel_ids))
        conn = await self.conn()
        org_id = self.org.org_id
        async with conn.transaction():
            regions = await self._default_regions(conn)
            private_ok = private_allowed(await self._access(conn, regions), regions)
            wanted = sorted({c for item in items for c in item.channel_ids})
            owned: set[str] = set()
            if wanted:
                rows = await (
                    await conn.execute(Q.org_channels_among, {"org_id": org_id, "ids": wanted})
                ).fetchall()
                owned = {str(r["id"]) for r in rows}
            # The operator's deny-list, item by item only when it holds anything.
            denylist = await abuse.any_entries(conn)
            for item in items:
                try:
                    self._org_checks(item, owned, regions, private_ok)
                    if denylist:
                        await abuse.check_target(conn, item.data.check)
                except ApiError as err:
                    errors.append(_item_error(item.index, err))
            if errors:
                errors.sort(key=lambda e: e.index)
                raise ApiError(
                    400,
                    "BULK_VALIDATION_FAILED",
                    f"{len(errors)} of {len(raws)} targets are invalid; none was created",
                    "/targets",
                    {"errors": msgspec.to_builtins(errors), "count": len(errors)},
                )
            await quotas.enforce(
                conn, org_id, "max_targets", Q.count_org_targets, adding=len(items)
            )
            await self._insert(conn, items, regions, write_source)
            ids = [item.target_id for item in items]
            await webhook_events.targets(conn, ids, "monitor.created")
            await self.audit(
                conn,
                "target.bulk_create",
                "target",
                None,
                after={"count": len(ids), "ids": [str(i) for i in ids]},
            )
            return await self._read_new(conn, items, regions, write_source)

    def _org_checks(
        self, item: _Item, owned: set[str], regions: list[str], private_ok: bool
    ) -> None:
        """The checks of a create that depend on the org's rows (``create``'s, in order)."""
        for i, cid in enumerate(item.channel_ids):
            if cid not in owned:
                raise ApiError(
                    400,
                    "INVALID_ALERT_CONFIG",
                    f"notification channel {cid} does not exist",
                    f"/alerts/{i}/channel_id",
                )
        if not private_ok:
            v.ssrf(item.data.check)
        sources = policy_sources(item.fields.kind, regions)
        v.region_policy_fits(item.data.region_policy, sources, "/region_policy")

    async def _insert(
        self,
        conn: AsyncConnection[Any],
        items: list[_Item],
        regions: list[str],
        write_source: str,
    ) -> None:
        org_id = self.org.org_id
        rows = msgspec.json.encode([_row_json(item) for item in items]).decode()
        await conn.execute(
            Q.bulk_insert_targets, {"org_id": org_id, "rows": rows, "write_source": write_source}
        )
        probed = [item.target_id for item in items if item.fields.kind != HEARTBEAT]
        if probed and regions:
            await conn.execute(Q.bulk_insert_regions, {"target_ids": probed, "region_ids": regions})
        alerts = [
            {"target_id": str(item.target_id), "channel_id": cid, "position": pos}
            for item in items
            for pos, cid in enumerate(item.channel_ids)
        ]
        if alerts:
            await conn.execute(Q.bulk_insert_alerts, {"rows": msgspec.json.encode(alerts).decode()})
        for item in items:
            if item.fields.kind == HEARTBEAT:
                await sync_target(
                    conn, self.sealer, self.token_key, org_id, item.target_id, HEARTBEAT
                )

    async def _read_new(
        self, conn: AsyncConnection[Any], items: list[_Item], regions: list[str], write_source: str
    ) -> list[Target]:
        """The created targets as a read shows them, built from what was just inserted (reading
        10,000 rows back and decoding their JSON columns was half of a bulk create's time). The
        rows' times are the transaction's ``now()``; nothing has run yet, so the current state
        is unknown (paused when created disabled) with empty last 24 h."""
        # The regions in the order target reads list them (the database's collation).
        row = await (
            await conn.execute(
                "SELECT now() AS now, ARRAY(SELECT r FROM unnest(%(regions)s::text[]) AS r"
                " ORDER BY r) AS regions",
                {"regions": regions},
            )
        ).fetchone()
        assert row is not None
        now, probed_regions = row["now"], list(row["regions"])
        checks = redacted_checks([(item.fields.spec, item.fields.secrets) for item in items])
        targets = []
        for item, check in zip(items, checks, strict=True):
            f = item.fields
            targets.append(
                row_to_target(
                    {
                        "id": item.target_id,
                        "name": f.name,
                        "spec": f.spec,
                        "secrets": f.secrets,
                        "interval_secs": f.interval,
                        "enabled": f.enabled,
                        "tags": f.tags,
                        "alert_ids": item.channel_ids,
                        "alert_confirmations": f.alert_confirmations,
                        "notify_recovery": f.notify_recovery,
                        "renotify_interval_secs": f.renotify_interval_secs,
                        "region_policy": policy_to_json(f.region_policy),
                        "regions": [] if f.kind == HEARTBEAT else probed_regions,
                        "created_at": now,
                        "updated_at": now,
                        "write_source": write_source,
                        "current_status": "unknown" if f.enabled else "paused",
                        "last_checked_at": None,
                        "checks_24h": 0,
                        "up_24h": 0,
                        "incident_id": None,
                    },
                    check,
                )
            )
        await show_endpoints(conn, self.sealer, self.org.org_id, targets, self.public_url)
        return targets

    # -- bulk actions ---------------------------------------------------------------------------

    async def bulk_action(
        self, body: TargetBulkAction, write_source: str
    ) -> TargetBulkActionResult:
        bulk_size(len(body.ids), "/ids")
        action = body.action
        add_tags: list[str] = []
        if isinstance(action, ActionTagAdd | ActionTagRemove):
            try:
                add_tags = v.tags(action.tags)
            except ApiError as err:
                err.field = "/action" + (err.field or "")
                raise
            if not add_tags:
                raise ApiError(400, "INVALID_TAG", "name at least one tag", "/action/tags")
        if isinstance(action, ActionUpdate):
            self._check_update(action)
        failed: list[BulkFailure] = []
        wanted: list[uuid.UUID] = []
        seen: set[str] = set()
        for raw in body.ids:
            parsed = parse_uuid(raw)
            if parsed is None:
                failed.append(BulkFailure(raw, "TARGET_NOT_FOUND", "target not found"))
                continue
            if str(parsed) in seen:
                continue
            seen.add(str(parsed))
            wanted.append(parsed)
        conn = await self.conn()
        org_id = self.org.org_id
        base = {"org_id": org_id, "write_source": write_source}
        async with conn.transaction():
            rows = await (
                await conn.execute(Q.lock_targets_among, {"org_id": org_id, "ids": wanted})
            ).fetchall()
            by_id = {row["id"]: row for row in rows}
            ok: list[uuid.UUID] = []
            for tid in wanted:
                if tid not in by_id:
                    failed.append(BulkFailure(str(tid), "TARGET_NOT_FOUND", "target not found"))
                else:
                    ok.append(tid)
            if isinstance(action, ActionEnable | ActionDisable):
                enabled = isinstance(action, ActionEnable)
                await conn.execute(Q.bulk_set_enabled, {**base, "ids": ok, "enabled": enabled})
            elif isinstance(action, ActionDelete):
                await webhook_events.targets(conn, ok, "monitor.deleted")
                await conn.execute(Q.bulk_delete, {"org_id": org_id, "ids": ok})
            elif isinstance(action, ActionTagAdd | ActionTagRemove):
                ok = await self._retag(conn, action, add_tags, ok, by_id, failed, base)
            else:
                ok = await self._update(conn, action, ok, by_id, failed, base)
            if not isinstance(action, ActionDelete):
                await webhook_events.targets(conn, ok, "monitor.updated")
            await self.audit(
                conn,
                f"target.bulk_{action.__struct_config__.tag}",
                "target",
                None,
                after={
                    "action": msgspec.to_builtins(action),
                    "succeeded": [str(i) for i in ok],
                    "failed": len(failed),
                },
            )
        return TargetBulkActionResult(succeeded=[str(i) for i in ok], failed=failed)

    def _check_update(self, action: ActionUpdate) -> None:
        from msgspec import UNSET

        if all(
            getattr(action, f) is UNSET
            for f in (
                "interval",
                "enabled",
                "alert_confirmations",
                "notify_recovery",
                "renotify_interval_secs",
            )
        ):
            raise ApiError(400, "INVALID_ACTION", "an update names at least one field", "/action")
        if action.interval is not UNSET and not 1 <= action.interval <= MAX_INTERVAL:
            raise ApiError(
                400,
                "INVALID_INTERVAL",
                f"interval must be between 1 and {MAX_INTERVAL} seconds",
                "/action/interval",
            )
        try:
            v.alert_fields(
                2 if action.alert_confirmations is UNSET else action.alert_confirmations,
                3600 if action.renotify_interval_secs is UNSET else action.renotify_interval_secs,
            )
        except ApiError as err:
            err.field = "/action" + (err.field or "")
            raise

    async def _retag(
        self,
        conn: AsyncConnection[Any],
        action: ActionTagAdd | ActionTagRemove,
        tags: list[str],
        ok: list[uuid.UUID],
        by_id: dict[Any, Any],
        failed: list[BulkFailure],
        base: dict[str, Any],
    ) -> list[uuid.UUID]:
        changes: list[dict[str, Any]] = []
        done: list[uuid.UUID] = []
        for tid in ok:
            current = list(by_id[tid]["tags"])
            if isinstance(action, ActionTagAdd):
                new = current + [t for t in tags if t not in current]
                if len(new) > v.MAX_TAGS:
                    failed.append(
                        BulkFailure(str(tid), "INVALID_TAG", f"at most {v.MAX_TAGS} tags")
                    )
                    continue
            else:
                new = [t for t in current if t not in tags]
            done.append(tid)
            if new != current:
                changes.append({"id": str(tid), "tags": new})
        if changes:
            await conn.execute(
                Q.bulk_set_tags, {**base, "rows": msgspec.json.encode(changes).decode()}
            )
        return done

    async def _update(
        self,
        conn: AsyncConnection[Any],
        action: ActionUpdate,
        ok: list[uuid.UUID],
        by_id: dict[Any, Any],
        failed: list[BulkFailure],
        base: dict[str, Any],
    ) -> list[uuid.UUID]:
        from msgspec import UNSET

        done: list[uuid.UUID] = []
        for tid in ok:
            if action.interval is not UNSET:
                row = by_id[tid]
                spec: CheckSpec = redacted_check(row["spec"], row["secrets"])
                try:
                    v.interval(action.interval, spec, self.org.min_interval_secs)
                except ApiError as err:
                    failed.append(BulkFailure(str(tid), err.code, err.message))
                    continue
            done.append(tid)

        def val(value: Any) -> Any:
            return None if value is UNSET else value

        if done:
            await conn.execute(
                Q.bulk_update_fields,
                {
                    **base,
                    "ids": done,
                    "interval_secs": val(action.interval),
                    "enabled": val(action.enabled),
                    "alert_confirmations": val(action.alert_confirmations),
                    "notify_recovery": val(action.notify_recovery),
                    "renotify_interval_secs": val(action.renotify_interval_secs),
                },
            )
        return done

    # -- tags ---------------------------------------------------------------------------------

    async def tags_page(
        self, *, prefix: str | None, limit: int, offset: int
    ) -> tuple[list[TagCount], int]:
        pattern = None
        if prefix:
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"{escaped}%"
        params = {"org_id": self.org.org_id, "prefix": pattern, "limit": limit, "offset": offset}
        conn = await self.conn()
        rows = await (await conn.execute(Q.tag_inventory, params)).fetchall()
        total = await (await conn.execute(Q.tag_count, params)).fetchone()
        items = [TagCount(name=r["name"], count=int(r["count"])) for r in rows]
        return items, int(total["total"] if total else 0)

    # -- pause and resume -----------------------------------------------------------------------

    async def set_paused(self, target_id: uuid.UUID, paused: bool, write_source: str) -> Target:
        conn = await self.conn()
        org_id = self.org.org_id
        async with conn.transaction():
            if (
                await (
                    await conn.execute(Q.lock_target, {"org_id": org_id, "id": target_id})
                ).fetchone()
            ) is None:
                raise target_not_found()
            await conn.execute(
                Q.bulk_set_enabled,
                {
                    "org_id": org_id,
                    "ids": [target_id],
                    "enabled": not paused,
                    "write_source": write_source,
                },
            )
            await webhook_events.target(conn, target_id, "monitor.updated")
            target = await self._fetch(conn, target_id)
            await self.audit(
                conn,
                "target.pause" if paused else "target.resume",
                "target",
                target_id,
                after={"enabled": target.enabled},
            )
            return target
