"""Targets: the service owns transactions; routes parse and authorise, the SQL holds no logic."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from msgspec import UNSET
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from control_plane.core import abuse, csv_export, quotas
from control_plane.core.errors import ApiError, not_found
from control_plane.core.ids import new_id
from control_plane.core.service import TenantService
from control_plane.db.sql import Queries
from control_plane.domain.heartbeats.service import (
    HEARTBEAT,
    policy_sources,
    show_endpoints,
    sync_target,
)
from control_plane.domain.regions.service import (
    Access,
    private_allowed,
    region_access,
    require_usable,
)
from control_plane.domain.webhooks import events as webhook_events
from shared.checks import (
    KIND_DEFAULT_INTERVAL,
    REDACTED,
    SECRET_HEADER_PREFIX,
    CheckSpec,
    check_kind,
)

from . import validation as v
from .codec import redacted_check, seal_check
from .rows import Fields, audited, policy_from_json, row_to_target, targets_from_json
from .schemas import AlertBinding, Target, TargetCreate, TargetUpdate

Q = Queries.beside(__file__)
DEFAULT_REGION = "default"


# ``sort`` of the target list: a fixed list of ORDER BY clauses, each ending with the id so a
# page never shifts between equal keys; ``-`` in front sorts descending. Status sorts by
# severity (down first), last_checked_at puts never-checked targets last. ``{rank}`` is the
# status's place in that order: the maintained ``target_state.rank`` where the page is chosen
# (an index range of ``target_state_org_rank_idx`` in the sort's order), the same position of
# the read's status where the page's rows are ordered.
STATUS_ORDER = "ARRAY['down','error','degraded','unknown','up','paused']"
_SORTS = {
    "name": "{t}name {dir}, {t}id {dir}",
    "created_at": "{t}created_at {dir}, {t}id {dir}",
    "status": "{rank} {dir}, {t}id {dir}",
    "last_checked_at": "{c}last_checked_at {dir} NULLS LAST, {t}id {dir}",
}
SORTS = tuple(_SORTS) + tuple(f"-{k}" for k in _SORTS)


# The maintained current status (migration 0200), for a status filter or a sort on it: the
# org's rows of ``target_state``, read in the sort's order from its index.
_STATE_JOIN = "JOIN target_state c ON c.target_id = t.id AND c.org_id = %(org_id)s"
_STATUS_FILTER = f"AND c.rank = array_position({STATUS_ORDER}, %(status)s::text)"
# The set-based newest last check of the org's targets (migration 0220), for a sort on it: the
# per-target view ``target_status`` would be evaluated once per target of the org. A status
# filter beside it reads ``target_state`` (as ``st``).
_LAST_CHECKED_JOIN = "LEFT JOIN org_last_checked(%(org_id)s) c ON c.target_id = t.id"
_LAST_CHECKED_STATE_JOIN = "JOIN target_state st ON st.target_id = t.id AND st.org_id = %(org_id)s"
_LAST_CHECKED_STATUS_FILTER = _STATUS_FILTER.replace("c.rank", "st.rank")


def _page_join(sort: str | None, status: str | None) -> tuple[str, str]:
    """The page step's join and status filter: the current state joins it only for a status
    filter or a sort on it; a page sorted by name or id is chosen from the targets alone (60,000
    of them cost an index scan, not 60,000 current states)."""
    if (sort or "").lstrip("-") == "last_checked_at":
        if status is None:
            return _LAST_CHECKED_JOIN, ""
        return _LAST_CHECKED_JOIN + " " + _LAST_CHECKED_STATE_JOIN, _LAST_CHECKED_STATUS_FILTER
    if status is not None or (sort or "").lstrip("-") == "status":
        return _STATE_JOIN, _STATUS_FILTER if status else ""
    return "", ""


def list_query(sort: str | None, status: str | None = None, *, json: bool = False) -> str:
    """``list_targets`` (rows) or ``list_targets_json`` (one JSON array) with its ORDER BY: on
    the tables inside the page, on its rows outside."""
    join, status_filter = _page_join(sort, status)
    page = (
        Q.list_page.replace("{page_join}", join)
        .replace("{status_filter}", status_filter)
        .replace("{order}", order_by(sort, t="t.", c="c.", rank="c.rank"))
    )
    tail = Q.list_targets_json if json else Q.list_targets
    outer = order_by(sort, t="t.", c="c.", rank=f"array_position({STATUS_ORDER}, c.current_status)")
    return page + "\n" + tail.replace("{page_order}", outer)


def count_query(params: dict[str, Any]) -> str:
    """The list's total for the list's parameters: the org's maintained totals
    (``count_targets_kept``) when nothing but the status filters the list, else
    ``count_targets`` with the maintained status joined for a status filter."""
    if all(params[k] is None for k in _COUNTED_FILTERS):
        return Q.count_targets_kept
    status = params["status"]
    return Q.count_targets.replace("{status_join}", _STATE_JOIN if status else "").replace(
        "{status_filter}", _STATUS_FILTER if status else ""
    )


# The filters the maintained totals cannot answer (they are kept per org and status only).
_COUNTED_FILTERS = ("tag", "enabled", "q", "kind", "region")


def order_by(sort: str | None, *, t: str = "t.", c: str = "c.", rank: str = "c.rank") -> str:
    if not sort:
        return f"{t}id"
    desc = sort.startswith("-")
    key = sort[1:] if desc else sort
    if key not in _SORTS:
        raise ApiError(
            400,
            "INVALID_QUERY_PARAM",
            f"sort must be one of {', '.join(SORTS)}",
            "/sort",
        )
    return _SORTS[key].format(dir="DESC" if desc else "ASC", t=t, c=c, rank=rank)


def target_not_found() -> ApiError:
    return not_found("TARGET_NOT_FOUND", "target")


async def ensure_target(
    conn: AsyncConnection[Any], org_id: uuid.UUID, target_id: uuid.UUID
) -> None:
    """Another org's target, or none at all: 404 either way."""
    row = await (
        await conn.execute(Q.target_owned, {"target_id": target_id, "org_id": org_id})
    ).fetchone()
    if row is None:
        raise target_not_found()


async def _check_channels(
    conn: AsyncConnection[Any], org_id: uuid.UUID, bindings: list[AlertBinding]
) -> list[str]:
    ids = v.alert_channel_ids(bindings)
    if ids:
        rows = await (
            await conn.execute(Q.org_channels_among, {"org_id": org_id, "ids": ids})
        ).fetchall()
        owned = {str(r["id"]) for r in rows}
        for i, cid in enumerate(ids):
            if cid not in owned:
                raise ApiError(
                    400,
                    "INVALID_ALERT_CONFIG",
                    f"notification channel {cid} does not exist",
                    f"/alerts/{i}/channel_id",
                )
    return ids


async def _set_alerts(conn: AsyncConnection[Any], target_id: uuid.UUID, ids: list[str]) -> None:
    await conn.execute(Q.replace_target_alerts_delete, {"target_id": target_id})
    if ids:
        await conn.execute(Q.insert_target_alerts, {"target_id": target_id, "channel_ids": ids})


async def _set_regions(conn: AsyncConnection[Any], target_id: uuid.UUID, ids: list[str]) -> None:
    await conn.execute(Q.replace_target_regions_delete, {"target_id": target_id})
    if ids:
        await conn.execute(Q.insert_target_regions, {"target_id": target_id, "region_ids": ids})


class TargetService(TenantService):
    @property
    def token_key(self) -> bytes:
        """Hashes heartbeat tokens (a write can make a target a heartbeat)."""
        return self.settings.security.token_key

    def _prepare(self, data: TargetCreate, target_id: uuid.UUID) -> Fields:
        """What a create validates on the body alone, and the stored fields (credentials
        sealed): the same for one target and for every item of a bulk create."""
        v.check(data.check)
        spec = data.check
        interval = (
            data.interval
            if data.interval is not None
            else KIND_DEFAULT_INTERVAL.get(check_kind(spec), 60)
        )
        v.interval(interval, spec, self.org.min_interval_secs)
        v.region_policy_shape(data.region_policy)
        v.alert_fields(data.alert_confirmations, data.renotify_interval_secs)
        public, sealed = seal_check(self.sealer, self.org.org_id, target_id, spec)
        return Fields(
            name=v.name(data.name),
            kind=check_kind(spec),
            spec=public,
            secrets=sealed,
            interval=interval,
            enabled=data.enabled,
            tags=v.tags(data.tags),
            alert_confirmations=data.alert_confirmations,
            notify_recovery=data.notify_recovery,
            renotify_interval_secs=data.renotify_interval_secs,
            region_policy=data.region_policy,
        )

    async def create(self, data: TargetCreate, write_source: str) -> Target:
        conn = await self.conn()
        spec = data.check
        target_id = new_id()
        fields = self._prepare(data, target_id)
        await abuse.check_target(conn, spec)  # the operator's deny-list (issue 15)
        async with conn.transaction():
            await quotas.enforce(conn, self.org.org_id, "max_targets", Q.count_org_targets)
            channel_ids = await _check_channels(conn, self.org.org_id, data.alerts)
            regions = await self._default_regions(conn)
            await self._guard_private(conn, spec, regions)
            sources = policy_sources(fields.kind, regions)
            v.region_policy_fits(data.region_policy, sources, "/region_policy")
            await conn.execute(
                Q.insert_target, fields.params(self.org.org_id, target_id, write_source)
            )
            await _set_alerts(conn, target_id, channel_ids)
            await _set_regions(conn, target_id, regions)
            await sync_target(
                conn, self.sealer, self.token_key, self.org.org_id, target_id, fields.kind
            )
            created = await self._fetch(conn, target_id)
            await self.audit(conn, "target.create", "target", target_id, after=audited(created))
            await webhook_events.target(conn, target_id, "monitor.created")
            return created

    async def _fetch(self, conn: AsyncConnection[Any], target_id: uuid.UUID) -> Target:
        org_id = self.org.org_id
        row = await (
            await conn.execute(Q.get_target, {"org_id": org_id, "id": target_id})
        ).fetchone()
        if row is None:
            raise target_not_found()
        targets = [row_to_target(row)]
        (target,) = await show_endpoints(conn, self.sealer, org_id, targets, self.public_url)
        return target

    async def _access(self, conn: AsyncConnection[Any], region_ids: list[str]) -> dict[str, Access]:
        allow_all = self.settings.security.allow_private_targets
        return await region_access(conn, self.org.org_id, region_ids, allow_all)

    async def _default_regions(self, conn: AsyncConnection[Any]) -> list[str]:
        """Where a new target is probed from: the default region, if enabled and the org may
        use it."""
        access = await self._access(conn, [DEFAULT_REGION])
        return [r for r, a in access.items() if a.enabled and a.visible]

    async def _guard_private(
        self, conn: AsyncConnection[Any], spec: CheckSpec, regions: list[str]
    ) -> None:
        """The create-time SSRF check, against the regions the check will run from: a private
        IP literal (or ``localhost``) is refused unless every one of them lets this org probe
        private addresses (the region's switch and the org's grant, or the deployment's)."""
        if not private_allowed(await self._access(conn, regions), regions):
            v.ssrf(spec)

    async def get(self, target_id: uuid.UUID) -> Target:
        conn = await self.conn()
        return await self._fetch(conn, target_id)

    def _list_params(
        self,
        *,
        tag: str | None,
        enabled: bool | None,
        q: str | None,
        kind: str | None,
        status: str | None,
        region: str | None,
    ) -> dict[str, Any]:
        pattern = None
        if q:
            escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{escaped}%"
        return {
            "org_id": self.org.org_id,
            "tag": tag,
            "enabled": enabled,
            "q": pattern,
            "kind": kind,
            "status": status,
            "region": region,
        }

    async def list_page(
        self,
        *,
        limit: int,
        offset: int,
        tag: str | None,
        enabled: bool | None,
        q: str | None,
        kind: str | None = None,
        status: str | None = None,
        region: str | None = None,
        sort: str | None = None,
    ) -> tuple[list[Target], int]:
        conn = await self.conn()
        params = self._list_params(
            tag=tag, enabled=enabled, q=q, kind=kind, status=status, region=region
        )
        params.update(
            limit=limit, offset=offset, redacted=REDACTED, header_prefix=SECRET_HEADER_PREFIX
        )
        # Never a prepared statement: after five runs PostgreSQL may switch it to its generic
        # plan, which does not know the page is 1,000 rows of 60,000 (sort=status: about 35 ms
        # planned per run, about 1 s generic; the list branch's 00a9e2b). Planning costs ~2 ms.
        query = list_query(sort, status, json=True)
        page = await (await conn.execute(query, params, prepare=False)).fetchone()
        total_row = await (await conn.execute(count_query(params), params)).fetchone()
        assert page is not None
        targets = targets_from_json(page["items"])
        await show_endpoints(conn, self.sealer, self.org.org_id, targets, self.public_url)
        return targets, int(total_row["total"] if total_row else 0)

    def export(
        self,
        *,
        tag: str | None,
        enabled: bool | None,
        q: str | None,
        kind: str | None,
        status: str | None,
        region: str | None,
        sort: str | None,
    ) -> AsyncIterator[Target]:
        """Every target the list's filters match, in its order, read as the CSV is sent."""
        params = self._list_params(
            tag=tag, enabled=enabled, q=q, kind=kind, status=status, region=region
        )
        params.update(limit=None, offset=0)
        query = list_query(sort, status)
        return csv_export.stream_rows(
            self.res.db, query, params, row_to_target, row_factory=dict_row
        )

    async def update(self, target_id: uuid.UUID, data: TargetUpdate, write_source: str) -> Target:
        conn = await self.conn()
        org_id = self.org.org_id
        async with conn.transaction():
            locked = await (
                await conn.execute(Q.lock_target, {"org_id": org_id, "id": target_id})
            ).fetchone()
            if locked is None:
                raise target_not_found()
            row = await (
                await conn.execute(Q.get_target, {"org_id": org_id, "id": target_id})
            ).fetchone()
            assert row is not None
            before = row_to_target(row)
            if data.check is not UNSET:
                await abuse.check_target(conn, data.check)  # the deny-list (issue 15)
            fields = self._merge(row, data, target_id)
            regions = list(row["regions"])
            # A heartbeat turned into a probed check starts from the default regions.
            to_probed = row["kind"] == HEARTBEAT and fields.kind != HEARTBEAT
            if to_probed:
                regions = await self._default_regions(conn)
            if data.check is not UNSET:
                await self._guard_private(conn, data.check, regions)
            sources = policy_sources(fields.kind, regions)
            v.region_policy_fits(fields.region_policy, sources, "/region_policy")
            await conn.execute(Q.update_target, fields.params(org_id, target_id, write_source))
            if data.alerts is not UNSET:
                await _set_alerts(conn, target_id, await _check_channels(conn, org_id, data.alerts))
            await sync_target(conn, self.sealer, self.token_key, org_id, target_id, fields.kind)
            if to_probed:
                await _set_regions(conn, target_id, regions)
            updated = await self._fetch(conn, target_id)
            await self.audit(
                conn,
                "target.update",
                "target",
                target_id,
                before=audited(before),
                after=audited(updated),
            )
            await webhook_events.target(conn, target_id, "monitor.updated")
            return updated

    def _merge(self, row: dict[str, Any], data: TargetUpdate, target_id: uuid.UUID) -> Fields:
        spec: CheckSpec
        if data.check is not UNSET:
            v.check(data.check)
            spec = data.check
            public, sealed = seal_check(self.sealer, self.org.org_id, target_id, spec)
        else:
            public, sealed = row["spec"], row["secrets"]
            spec = redacted_check(public, sealed)
        interval = row["interval_secs"] if data.interval is UNSET else data.interval
        if data.interval is not UNSET or data.check is not UNSET:
            v.interval(interval, spec, self.org.min_interval_secs)
        policy = (
            policy_from_json(row["region_policy"])
            if data.region_policy is UNSET
            else data.region_policy
        )
        v.region_policy_shape(policy)
        confirmations = (
            row["alert_confirmations"]
            if data.alert_confirmations is UNSET
            else data.alert_confirmations
        )
        renotify = (
            row["renotify_interval_secs"]
            if data.renotify_interval_secs is UNSET
            else data.renotify_interval_secs
        )
        v.alert_fields(confirmations, renotify)
        return Fields(
            name=row["name"] if data.name is UNSET else v.name(data.name),
            kind=check_kind(spec),
            spec=public,
            secrets=sealed,
            interval=interval,
            enabled=row["enabled"] if data.enabled is UNSET else data.enabled,
            tags=list(row["tags"]) if data.tags is UNSET else v.tags(data.tags),
            alert_confirmations=confirmations,
            notify_recovery=(
                row["notify_recovery"] if data.notify_recovery is UNSET else data.notify_recovery
            ),
            renotify_interval_secs=renotify,
            region_policy=policy,
        )

    async def delete(self, target_id: uuid.UUID) -> None:
        conn = await self.conn()
        async with conn.transaction():
            row = await (
                await conn.execute(Q.get_target, {"org_id": self.org.org_id, "id": target_id})
            ).fetchone()
            if row is None:
                raise target_not_found()
            await webhook_events.target(conn, target_id, "monitor.deleted")
            await conn.execute(Q.delete_target, {"org_id": self.org.org_id, "id": target_id})
            before = audited(row_to_target(row))
            await self.audit(conn, "target.delete", "target", target_id, before=before)

    async def get_regions(self, target_id: uuid.UUID) -> list[str]:
        return (await self.get(target_id)).regions

    async def set_regions(
        self, target_id: uuid.UUID, region_ids: list[str], write_source: str
    ) -> list[str]:
        conn = await self.conn()
        wanted: list[str] = []
        for rid in region_ids:
            if rid not in wanted:
                wanted.append(rid)
        if not wanted:
            raise ApiError(400, "INVALID_REGIONS", "a target needs at least one region", "/regions")
        org_id = self.org.org_id
        async with conn.transaction():
            if (
                await (
                    await conn.execute(Q.lock_target, {"org_id": org_id, "id": target_id})
                ).fetchone()
            ) is None:
                raise target_not_found()
            require_usable(await self._access(conn, wanted), wanted, "/regions/{i}")
            current = await self._fetch(conn, target_id)
            await self._guard_private(conn, current.check, wanted)
            if check_kind(current.check) == HEARTBEAT:
                raise ApiError(
                    422,
                    "HEARTBEAT_HAS_NO_REGIONS",
                    "a heartbeat target is not probed from regions: the job pings it",
                    "/regions",
                )
            v.region_policy_fits(current.region_policy, len(wanted), "/regions")
            await _set_regions(conn, target_id, wanted)
            await self.audit(
                conn,
                "target.set_regions",
                "target",
                target_id,
                before={"regions": current.regions},
                after={"regions": sorted(wanted)},
            )
            await conn.execute(
                Q.touch_target, {"org_id": org_id, "id": target_id, "write_source": write_source}
            )
            await webhook_events.target(conn, target_id, "monitor.updated")
            return sorted(wanted)
