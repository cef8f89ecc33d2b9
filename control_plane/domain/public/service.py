"""The public surface: a published page by its slug, built into one ``Snapshot`` from the
rollups and kept in Redis for ``CACHE_SECS``, so a burst of visitors costs one build per page
every few seconds and each build is O(components) queries' worth of rollup rows, never raw
results. The key carries the page's ``updated_at``: an operator's edit shows at once.

Only what the page curates is ever looked at: every query is bounded by the page's component
ids, so a monitor not on the page is a 404 on every public route and never in a list.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import structlog
from psycopg import AsyncConnection
from redis.exceptions import RedisError

from control_plane.core.errors import ApiError, not_found
from control_plane.core.service import Service
from control_plane.db.sql import Queries
from control_plane.security.tokens import token_hash

from . import cache, render
from .schemas import (
    ComponentHistory,
    ComponentStatus,
    PublicComponent,
    PublicComponentRef,
    PublicDay,
    PublicIncident,
    PublicIncidentPage,
    PublicIncidentUpdate,
    PublicMaintenance,
    PublicPageInfo,
    PublicStatus,
    SharedLatencyPoint,
    SharedMonitor,
    Snapshot,
)
from .templates import environment
from .views import status_context

Q = Queries.beside(__file__)
log = structlog.get_logger("vigil.public")

CACHE_SECS = 10
HISTORY_DAYS = 90
RANK: dict[str, int] = {
    "operational": 0,
    "under_maintenance": 1,
    "degraded_performance": 2,
    "partial_outage": 3,
    "major_outage": 4,
}
_SNAP = msgspec.msgpack.Decoder(Snapshot)
_ENC = msgspec.msgpack.Encoder()
# Per process: the snapshots read in the last MEMO_SECS (no Redis round trip for a hot page),
# and one build at a time per page key (a burst at expiry builds once, the rest wait for it).
MEMO_SECS = 2.0
MEMO_MAX = 1000
_memo: dict[str, tuple[float, Snapshot]] = {}
_building: dict[str, asyncio.Lock] = {}


# The rendered answers ``PublicService.rendered`` serves from ``cache``: the status JSON, the
# HTML page, its dynamic region and the overall badge.
VARIANTS = ("json", "html", "fragment", "badge")
_TEMPLATES = environment()
_JSON = msgspec.json.Encoder()


def render_variant(snap: Snapshot, variant: str) -> cache.Rendered:
    if variant == "json":
        return cache.rendered(200, "application/json", _JSON.encode(snap.status))
    if variant == "badge":
        svg = render.status_badge("status", snap.status.status)
        return cache.rendered(200, "image/svg+xml; charset=utf-8", svg.encode())
    name = "status_fragment.html" if variant == "fragment" else "status.html"
    html = _TEMPLATES.get_template(name).render(**status_context(snap))
    return cache.rendered(200, "text/html; charset=utf-8", html.encode())


def page_not_found() -> ApiError:
    return not_found("PAGE_NOT_FOUND", "status page")


def component_not_found() -> ApiError:
    return not_found("COMPONENT_NOT_FOUND", "component")


def incident_not_found() -> ApiError:
    return not_found("INCIDENT_NOT_FOUND", "incident")


def share_not_found() -> ApiError:
    return not_found("SHARE_NOT_FOUND", "share link")


def overall(statuses: list[str]) -> ComponentStatus:
    if not statuses:
        return "operational"
    if all(s == "major_outage" for s in statuses):
        return "major_outage"
    if "major_outage" in statuses:
        return "partial_outage"
    worst = max(statuses, key=lambda s: RANK[s])
    return worst  # type: ignore[return-value]


def pct(up: int, checks: int) -> float | None:
    return round(100.0 * up / checks, 3) if checks else None


def _days(
    rows: list[dict[str, Any]], ids: list[uuid.UUID], today: date, n: int
) -> dict[str, list[PublicDay]]:
    by: dict[tuple[uuid.UUID, date], dict[str, Any]] = {(r["target_id"], r["day"]): r for r in rows}
    out: dict[str, list[PublicDay]] = {}
    for tid in ids:
        days = []
        for i in range(n - 1, -1, -1):
            day = today - timedelta(days=i)
            r = by.get((tid, day))
            good = int(r["up"]) + int(r["degraded"]) if r else 0
            checks = good + int(r["down"]) + int(r["error"]) if r else 0
            days.append(
                PublicDay(
                    date=day.isoformat(),
                    uptime_pct=pct(good, checks),
                    checks=checks,
                    failed=checks - good,
                )
            )
        out[str(tid)] = days
    return out


def _total(days: list[PublicDay]) -> float | None:
    checks = sum(d.checks for d in days)
    return pct(checks - sum(d.failed for d in days), checks)


def incident_title(row: dict[str, Any], name: str) -> str:
    if row["public_title"]:
        return str(row["public_title"])
    return f"{name}: {'outage' if row['status'] == 'down' else 'degraded performance'}"


async def _incidents(
    conn: AsyncConnection[Any], rows: list[dict[str, Any]], names: dict[uuid.UUID, str]
) -> list[PublicIncident]:
    if not rows:
        return []
    ups = await (
        await conn.execute(Q.incident_updates, {"ids": [r["id"] for r in rows]})
    ).fetchall()
    updates: dict[uuid.UUID, list[PublicIncidentUpdate]] = defaultdict(list)
    for u in ups:
        updates[u["incident_id"]].append(
            PublicIncidentUpdate(phase=u["phase"], message=u["message"], created_at=u["created_at"])
        )
    out = []
    for r in rows:
        mine = updates.get(r["id"], [])
        over = r["ended_at"] is not None or r["state"] == "resolved"
        status = mine[0].phase if mine else ("resolved" if over else "investigating")
        if over and status not in ("resolved", "postmortem"):
            status = "resolved"
        impact: Any = r["severity"] or ("critical" if r["status"] == "down" else "minor")
        name = names.get(r["target_id"], "")
        out.append(
            PublicIncident(
                id=r["id"],
                title=incident_title(r, name),
                description=r["public_description"],
                status=status,
                impact=impact,
                started_at=r["started_at"],
                resolved_at=r["resolved_at"] or r["ended_at"] if over else None,
                components=[PublicComponentRef(id=r["target_id"], name=name)],
                updates=mine,
            )
        )
    return out


def history_of(snap: Snapshot, component_id: uuid.UUID, days: int) -> ComponentHistory:
    """One component's last ``days`` days from the page's snapshot (404 if not curated)."""
    comp = next((c for c in snap.status.components if c.id == component_id), None)
    if comp is None:
        raise component_not_found()
    kept = snap.history[str(component_id)][-days:]
    return ComponentHistory(
        component=PublicComponentRef(id=comp.id, name=comp.name),
        days=kept,
        uptime_pct=_total(kept),
    )


class PublicService(Service):
    """No caller: everything here is public, and reached only through a published page's slug
    (or a share link's token)."""

    async def _page(self, slug: str) -> dict[str, Any]:
        if len(slug) > 50:
            raise page_not_found()
        conn = await self.conn()
        row = await (await conn.execute(Q.page_by_slug, {"slug": slug})).fetchone()
        if row is None:
            raise page_not_found()
        return dict(row)

    async def rendered(self, slug: str, variant: str) -> cache.Rendered:
        """One of the page's ``VARIANTS``, rendered at most once per ``cache.CACHE_SECS`` and
        shared by every visitor (see ``cache``); 404 ``PAGE_NOT_FOUND`` as ``snapshot``."""
        if len(slug) > 50:
            raise page_not_found()
        out = await cache.get(
            self.res.redis,
            self.settings.redis.prefix,
            f"{variant}:{slug}",
            lambda: self._render(slug, variant),
        )
        if out.status == 404:
            raise page_not_found()
        return out

    async def _render(self, slug: str, variant: str) -> cache.Rendered:
        # Its own service (its own pooled connection): the build outlives a visitor who hangs up.
        async with PublicService(self.res, None, self.meta) as svc:
            try:
                snap = await svc.snapshot(slug)
            except ApiError as exc:
                if exc.code == "PAGE_NOT_FOUND":
                    return cache.MISSING
                raise
        return render_variant(snap, variant)

    async def slug_for_host_cached(self, host: str) -> str:
        """``slug_for_host`` through the rendered cache (a custom domain's every visit)."""

        async def build() -> cache.Rendered:
            async with PublicService(self.res, None, self.meta) as svc:
                try:
                    slug = await svc.slug_for_host(host)
                except ApiError:
                    return cache.MISSING
            return cache.Rendered(200, "", slug.encode())

        out = await cache.get(
            self.res.redis, self.settings.redis.prefix, f"host:{host.lower()[:260]}", build
        )
        if out.status == 404:
            raise page_not_found()
        return out.body.decode()

    def _key(self, page: dict[str, Any]) -> str:
        prefix = self.settings.redis.prefix
        return f"{prefix}public:snap:{page['id']}:{page['updated_at'].timestamp():.6f}"

    async def snapshot(self, slug: str) -> Snapshot:
        """The page's snapshot: from this process's memo, else Redis, else built (once per
        process at a time). The key holds the page's ``updated_at``: an edit is seen at once."""
        page = await self._page(slug)
        key = self._key(page)
        now = time.monotonic()
        memo = _memo.get(key)
        if memo is not None and memo[0] > now:
            return memo[1]
        lock = _building.setdefault(key, asyncio.Lock())
        async with lock:
            memo = _memo.get(key)
            if memo is not None and memo[0] > time.monotonic():
                return memo[1]
            snap = await self._cached_or_built(key, page)
            if len(_memo) >= MEMO_MAX:
                _memo.clear()
            _memo[key] = (time.monotonic() + MEMO_SECS, snap)
        if len(_building) > MEMO_MAX:
            _building.clear()
        return snap

    async def _cached_or_built(self, key: str, page: dict[str, Any]) -> Snapshot:
        redis = self.res.redis
        try:
            cached = await redis.get(key)
            if cached is not None:
                return _SNAP.decode(cached)
        except (RedisError, OSError, msgspec.DecodeError) as exc:
            log.warning("public_cache_read_failed", error=str(exc))
        snap = await self._build(page)
        try:
            await redis.set(key, _ENC.encode(snap), ex=CACHE_SECS)
        except (RedisError, OSError) as exc:
            log.warning("public_cache_write_failed", error=str(exc))
        return snap

    async def _build(self, page: dict[str, Any]) -> Snapshot:
        conn = await self.conn()
        org_id = page["org_id"]
        comps = await (await conn.execute(Q.components, {"page_id": page["id"]})).fetchall()
        ids = [c["target_id"] for c in comps]
        names = {c["target_id"]: c["name"] for c in comps}
        params = {"org_id": org_id, "ids": ids}
        now = datetime.now(UTC)
        today = now.date()
        open_rows = await (await conn.execute(Q.open_incidents, params)).fetchall()
        windows = await (await conn.execute(Q.maintenance, params)).fetchall()
        start = datetime.combine(today - timedelta(days=HISTORY_DAYS - 1), datetime.min.time(), UTC)
        day_rows = await (await conn.execute(Q.daily_uptime, {**params, "from": start})).fetchall()
        history = _days(day_rows, ids, today, HISTORY_DAYS)

        maintenance: list[PublicMaintenance] = []
        in_maintenance: set[uuid.UUID] = set()
        for w in windows:
            covered = ids if w["all_targets"] else list(w["target_ids"])
            active = w["starts_at"] <= now
            if active:
                in_maintenance.update(covered)
            maintenance.append(
                PublicMaintenance(
                    id=w["id"],
                    title=w["title"],
                    description=w["description"],
                    status="active" if active else "upcoming",
                    starts_at=w["starts_at"],
                    ends_at=w["ends_at"],
                    components=[PublicComponentRef(id=t, name=names[t]) for t in covered],
                )
            )
        worst: dict[uuid.UUID, str] = {}
        for r in open_rows:
            s = "major_outage" if r["status"] == "down" else "degraded_performance"
            if RANK[s] > RANK.get(worst.get(r["target_id"], "operational"), 0):
                worst[r["target_id"]] = s
        components = []
        for c in comps:
            tid = c["target_id"]
            status = "under_maintenance" if tid in in_maintenance else worst.get(tid, "operational")
            components.append(
                PublicComponent(
                    id=tid,
                    name=c["name"],
                    description=c["public_description"],
                    group=c["public_group"],
                    status=status,  # type: ignore[arg-type]
                    uptime_pct=_total(history[str(tid)]),
                )
            )
        base = self.public_url
        logo = page["logo_updated_at"]
        info = PublicPageInfo(
            name=page["name"],
            slug=page["slug"],
            description=page["description"],
            brand_color=page["brand_color"],
            logo_url=(
                f"/api/public/v1/pages/{page['slug']}/logo?v={int(logo.timestamp())}"
                if logo is not None
                else None
            ),
            page_url=f"{base}/status/{page['slug']}",
        )
        public = PublicStatus(
            page=info,
            status=overall([c.status for c in components]),
            components=components,
            active_incidents=await _incidents(conn, list(open_rows), names),
            maintenance=maintenance,
            generated_at=now,
        )
        return Snapshot(
            page_id=page["id"],
            org_id=org_id,
            custom_css=page["custom_css"],
            hide_branding=page["hide_branding"],
            status=public,
            history=history,
        )

    async def history(self, slug: str, component_id: uuid.UUID, days: int) -> ComponentHistory:
        return history_of(await self.snapshot(slug), component_id, days)

    async def _curated(self, slug: str) -> tuple[dict[str, Any], dict[uuid.UUID, str]]:
        page = await self._page(slug)
        conn = await self.conn()
        comps = await (await conn.execute(Q.components, {"page_id": page["id"]})).fetchall()
        return page, {c["target_id"]: c["name"] for c in comps}

    async def incidents(self, slug: str, *, limit: int, offset: int) -> PublicIncidentPage:
        page, names = await self._curated(slug)
        conn = await self.conn()
        params = {"org_id": page["org_id"], "ids": list(names), "limit": limit, "offset": offset}
        rows = await (await conn.execute(Q.recent_incidents, params)).fetchall()
        total = int(rows[0]["total"]) if rows else 0
        if not rows and offset:
            counted = await (
                await conn.execute(Q.recent_incidents, {**params, "limit": 1, "offset": 0})
            ).fetchone()
            total = int(counted["total"]) if counted else 0
        items = await _incidents(conn, list(rows), names)
        return PublicIncidentPage(items=items, total=total, limit=limit, offset=offset)

    async def incident(self, slug: str, incident_id: uuid.UUID) -> PublicIncident:
        page, names = await self._curated(slug)
        conn = await self.conn()
        row = await (
            await conn.execute(
                Q.one_incident, {"id": incident_id, "org_id": page["org_id"], "ids": list(names)}
            )
        ).fetchone()
        if row is None:
            raise incident_not_found()
        (incident,) = await _incidents(conn, [row], names)
        return incident

    async def slug_for_host(self, host: str) -> str:
        """The slug of the published page whose verified custom domain is ``host``."""
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.strip().lower().rstrip(".")
        if not name or len(name) > 253:
            raise page_not_found()
        conn = await self.conn()
        row = await (await conn.execute(Q.slug_by_host, {"host": name})).fetchone()
        if row is None:
            raise page_not_found()
        return str(row["slug"])

    async def logo(self, slug: str) -> tuple[bytes, str]:
        if len(slug) > 50:
            raise page_not_found()
        conn = await self.conn()
        row = await (await conn.execute(Q.page_logo, {"slug": slug})).fetchone()
        if row is None:
            raise not_found("LOGO_NOT_FOUND", "logo")
        return bytes(row["logo"]), str(row["logo_content_type"])

    # Share links.

    async def shared(self, token: str) -> SharedMonitor:
        if not token.startswith("vgs_") or len(token) > 100:
            raise share_not_found()
        conn = await self.conn()
        row = await (
            await conn.execute(
                Q.share_by_hash, {"hash": token_hash(self.settings.security.token_key, token)}
            )
        ).fetchone()
        if row is None:
            raise share_not_found()
        org_id, tid = row["org_id"], row["target_id"]
        names = {tid: row["name"]}
        params = {"org_id": org_id, "ids": [tid]}
        now = datetime.now(UTC)
        today = now.date()
        start = datetime.combine(today - timedelta(days=29), datetime.min.time(), UTC)
        day_rows = await (await conn.execute(Q.daily_uptime, {**params, "from": start})).fetchall()
        days = _days(day_rows, [tid], today, 30)[str(tid)]
        open_rows = await (await conn.execute(Q.open_incidents, params)).fetchall()
        status: ComponentStatus = "operational"
        if any(r["status"] == "down" for r in open_rows):
            status = "major_outage"
        elif open_rows:
            status = "degraded_performance"
        recent = await (
            await conn.execute(Q.recent_incidents, {**params, "limit": 10, "offset": 0})
        ).fetchall()
        lat = await (
            await conn.execute(
                Q.latency_hours,
                {"org_id": org_id, "target_id": tid, "from": now - timedelta(hours=24)},
            )
        ).fetchall()
        return SharedMonitor(
            name=row["name"],
            kind=row["kind"],
            status=status,
            uptime_24h=_total(days[-1:]),
            uptime_7d=_total(days[-7:]),
            uptime_30d=_total(days),
            latency=[SharedLatencyPoint(at=r["at"], p50=r["p50"], p95=r["p95"]) for r in lat],
            incidents=await _incidents(conn, list(recent), names),
            days=days,
        )
