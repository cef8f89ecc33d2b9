"""Status pages: an org's public pages, their branding and the monitors curated onto them.

Every mutation touches the page's ``updated_at`` (the public snapshot's cache key) and, once
committed, invalidates the public surface's rendered answers (``domain/public/cache.py``), so an
operator's change shows at once.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import msgspec
from msgspec import UNSET
from psycopg import AsyncConnection
from psycopg import errors as pg

from control_plane.core import quotas
from control_plane.core.errors import ApiError, not_found
from control_plane.core.ids import new_id
from control_plane.core.service import TenantService
from control_plane.db.sql import Queries
from control_plane.domain.public import cache as public_cache
from control_plane.domain.targets.service import ensure_target

from . import domains
from . import validation as v
from .schemas import (
    Component,
    ComponentAdd,
    ComponentUpdate,
    DomainStatus,
    StatusPage,
    StatusPageCreate,
    StatusPageUpdate,
)

Q = Queries.beside(__file__)


def page_not_found() -> ApiError:
    return not_found("STATUS_PAGE_NOT_FOUND", "status page")


def component_not_found() -> ApiError:
    return not_found("COMPONENT_NOT_FOUND", "component")


def slug_taken(slug: str) -> ApiError:
    return ApiError(409, "SLUG_TAKEN", f"the slug {slug!r} is already in use", "/slug")


def _component(row: dict[str, Any]) -> Component:
    return Component(
        target_id=row["target_id"],
        target_name=row["target_name"],
        public_name=row["public_name"],
        public_description=row["public_description"],
        public_group=row["public_group"],
        sort_order=row["sort_order"],
        display_name=row["public_name"] or row["target_name"],
    )


class StatusPageService(TenantService):
    # Set by every audited mutation; ``close`` (after the transaction committed, before the
    # answer is sent) then invalidates the public surface's rendered answers.
    _changed = False

    async def audit(self, conn: AsyncConnection[Any], *args: Any, **kwargs: Any) -> None:
        self._changed = True
        await super().audit(conn, *args, **kwargs)

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            if self._changed:
                self._changed = False
                await public_cache.invalidate(self.res.redis, self.settings.redis.prefix)

    def _page(self, row: dict[str, Any]) -> StatusPage:
        base = self.public_url
        logo = row["logo_updated_at"]
        return StatusPage(
            id=row["id"],
            name=row["name"],
            slug=row["slug"],
            description=row["description"],
            published=row["published"],
            brand_color=row["brand_color"],
            custom_css=row["custom_css"],
            hide_branding=row["hide_branding"],
            url=f"{base}/status/{row['slug']}",
            logo_url=(
                f"{base}/api/public/v1/pages/{row['slug']}/logo?v={int(logo.timestamp())}"
                if logo is not None
                else None
            ),
            component_count=int(row["component_count"]),
            custom_domain=row["custom_domain"],
            domain_verified=row["domain_verified_at"] is not None,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    async def _fetch(self, conn: AsyncConnection[Any], page_id: uuid.UUID) -> StatusPage:
        row = await (
            await conn.execute(Q.page_fields, {"org_id": self.org.org_id, "id": page_id})
        ).fetchone()
        if row is None:
            raise page_not_found()
        return self._page(row)

    async def _lock(self, conn: AsyncConnection[Any], page_id: uuid.UUID) -> None:
        row = await (
            await conn.execute(Q.lock_page, {"org_id": self.org.org_id, "id": page_id})
        ).fetchone()
        if row is None:
            raise page_not_found()

    async def _touch(self, conn: AsyncConnection[Any], page_id: uuid.UUID) -> None:
        await conn.execute(Q.touch_page, {"org_id": self.org.org_id, "id": page_id})

    async def create(self, data: StatusPageCreate) -> StatusPage:
        page_id, slug = new_id(), v.slug(data.slug)
        params: dict[str, Any] = {
            "id": page_id,
            "org_id": self.org.org_id,
            "name": v.name(data.name),
            "slug": slug,
            "description": v.description(data.description),
            "published": data.published,
            "brand_color": v.brand_color(data.brand_color),
            "custom_css": v.custom_css(data.custom_css),
            "hide_branding": data.hide_branding,
        }
        conn = await self.conn()
        try:
            async with conn.transaction():
                await quotas.enforce(conn, self.org.org_id, "max_status_pages", Q.count_org_pages)
                await conn.execute(Q.insert_page, params)
                page = await self._fetch(conn, page_id)
                await self.audit(
                    conn, "status_page.create", "status_page", page.id, after=_doc(page)
                )
                return page
        except pg.UniqueViolation:
            raise slug_taken(slug) from None

    async def get(self, page_id: uuid.UUID) -> StatusPage:
        return await self._fetch(await self.conn(), page_id)

    async def list_page(self, *, limit: int, offset: int) -> tuple[list[StatusPage], int]:
        conn = await self.conn()
        params = {"org_id": self.org.org_id, "limit": limit, "offset": offset}
        rows = await (await conn.execute(Q.list_pages, params)).fetchall()
        total = await (await conn.execute(Q.count_pages, params)).fetchone()
        return [self._page(r) for r in rows], int(total["total"] if total else 0)

    async def update(self, page_id: uuid.UUID, data: StatusPageUpdate) -> StatusPage:
        conn = await self.conn()
        new_slug = ""
        try:
            async with conn.transaction():
                await self._lock(conn, page_id)
                before = await self._fetch(conn, page_id)
                params: dict[str, Any] = {
                    "id": page_id,
                    "org_id": self.org.org_id,
                    "name": before.name if data.name is UNSET else v.name(data.name),
                    "slug": before.slug if data.slug is UNSET else v.slug(data.slug),
                    "description": (
                        before.description
                        if data.description is UNSET
                        else v.description(data.description)
                    ),
                    "published": before.published if data.published is UNSET else data.published,
                    "brand_color": (
                        before.brand_color
                        if data.brand_color is UNSET
                        else v.brand_color(data.brand_color)
                    ),
                    "custom_css": (
                        before.custom_css
                        if data.custom_css is UNSET
                        else v.custom_css(data.custom_css)
                    ),
                    "hide_branding": (
                        before.hide_branding if data.hide_branding is UNSET else data.hide_branding
                    ),
                }
                new_slug = str(params["slug"])
                await conn.execute(Q.update_page, params)
                after = await self._fetch(conn, page_id)
                await self.audit(
                    conn,
                    "status_page.update",
                    "status_page",
                    page_id,
                    before=_doc(before),
                    after=_doc(after),
                )
                return after
        except pg.UniqueViolation:
            raise slug_taken(new_slug) from None

    async def delete(self, page_id: uuid.UUID) -> None:
        conn = await self.conn()
        async with conn.transaction():
            before = await self._fetch(conn, page_id)
            await conn.execute(Q.delete_page, {"org_id": self.org.org_id, "id": page_id})
            await self.audit(
                conn, "status_page.delete", "status_page", page_id, before=_doc(before)
            )

    # Logo.

    async def set_logo(
        self, page_id: uuid.UUID, logo: bytes | None, content_type: str | None
    ) -> StatusPage:
        conn = await self.conn()
        async with conn.transaction():
            row = await (
                await conn.execute(
                    Q.set_logo,
                    {
                        "org_id": self.org.org_id,
                        "id": page_id,
                        "logo": logo,
                        "content_type": content_type,
                    },
                )
            ).fetchone()
            if row is None:
                raise page_not_found()
            page = await self._fetch(conn, page_id)
            action = "status_page.logo_set" if logo is not None else "status_page.logo_delete"
            await self.audit(
                conn,
                action,
                "status_page",
                page_id,
                after={"content_type": content_type, "bytes": len(logo or b"")},
            )
            return page

    # Custom domain.

    def _domain(self, row: dict[str, Any]) -> DomainStatus:
        host = row["custom_domain"]
        return DomainStatus(
            domain=host,
            verified=row["domain_verified_at"] is not None,
            verified_at=row["domain_verified_at"],
            txt_name=domains.challenge_name(host),
            txt_value=f"{domains.VALUE_PREFIX}{row['domain_token']}",
        )

    async def claim_domain(self, page_id: uuid.UUID, value: str) -> DomainStatus:
        host = domains.domain(value)
        conn = await self.conn()
        try:
            async with conn.transaction():
                row = await (
                    await conn.execute(
                        Q.claim_domain,
                        {
                            "org_id": self.org.org_id,
                            "id": page_id,
                            "domain": host,
                            "token": secrets.token_urlsafe(24),
                        },
                    )
                ).fetchone()
                if row is None:
                    raise page_not_found()
                await self.audit(
                    conn, "status_page.domain_claim", "status_page", page_id, after={"domain": host}
                )
                return self._domain(row)
        except pg.UniqueViolation:
            raise ApiError(
                409, "DOMAIN_TAKEN", f"{host} is claimed by another page", "/domain"
            ) from None

    async def domain_status(self, page_id: uuid.UUID) -> DomainStatus:
        conn = await self.conn()
        row = await (
            await conn.execute(Q.get_domain, {"org_id": self.org.org_id, "id": page_id})
        ).fetchone()
        if row is None:
            raise page_not_found()
        if row["custom_domain"] is None:
            raise not_found("DOMAIN_NOT_FOUND", "custom domain")
        return self._domain(row)

    async def verify_domain(self, page_id: uuid.UUID) -> DomainStatus:
        current = await self.domain_status(page_id)
        found = await domains.txt_values(self.settings.status_pages, current.txt_name)
        if current.txt_value not in found:
            raise ApiError(
                422,
                "DOMAIN_NOT_VERIFIED",
                f"no TXT record {current.txt_value!r} at {current.txt_name}",
                details={"txt_name": current.txt_name, "txt_value": current.txt_value},
            )
        conn = await self.conn()
        async with conn.transaction():
            row = await (
                await conn.execute(
                    Q.domain_verified,
                    {"org_id": self.org.org_id, "id": page_id, "domain": current.domain},
                )
            ).fetchone()
            if row is None:  # released or changed meanwhile
                raise not_found("DOMAIN_NOT_FOUND", "custom domain")
            await self.audit(
                conn,
                "status_page.domain_verify",
                "status_page",
                page_id,
                after={"domain": current.domain},
            )
            return self._domain(row)

    async def release_domain(self, page_id: uuid.UUID) -> None:
        conn = await self.conn()
        async with conn.transaction():
            row = await (
                await conn.execute(Q.release_domain, {"org_id": self.org.org_id, "id": page_id})
            ).fetchone()
            if row is None:
                raise page_not_found()
            await self.audit(conn, "status_page.domain_release", "status_page", page_id)

    # Components.

    async def components(self, page_id: uuid.UUID) -> list[Component]:
        conn = await self.conn()
        await self._fetch(conn, page_id)
        rows = await (
            await conn.execute(Q.list_components, {"org_id": self.org.org_id, "page_id": page_id})
        ).fetchall()
        return [_component(r) for r in rows]

    async def _component(
        self, conn: AsyncConnection[Any], page_id: uuid.UUID, target_id: uuid.UUID
    ) -> Component:
        row = await (
            await conn.execute(
                Q.get_component,
                {"org_id": self.org.org_id, "page_id": page_id, "target_id": target_id},
            )
        ).fetchone()
        if row is None:
            raise component_not_found()
        return _component(row)

    async def add_component(self, page_id: uuid.UUID, data: ComponentAdd) -> Component:
        target_id = data.target_id
        org_id = self.org.org_id
        params = {
            "page_id": page_id,
            "org_id": org_id,
            "target_id": target_id,
            "public_name": v.public_name(data.public_name),
            "public_description": v.public_description(data.public_description),
            "public_group": v.public_group(data.public_group),
            "sort_order": None if data.sort_order is None else v.sort_order(data.sort_order),
        }
        conn = await self.conn()
        async with conn.transaction():
            await self._lock(conn, page_id)
            try:
                await ensure_target(conn, org_id, target_id)
            except ApiError:
                raise ApiError(
                    422, "UNKNOWN_TARGET", "no target of this org has this id", "/target_id"
                ) from None
            existing = await (await conn.execute(Q.get_component, params)).fetchone()
            if existing is not None:
                raise ApiError(
                    409,
                    "COMPONENT_ALREADY_ON_PAGE",
                    "this monitor is already on the page; edit it with PATCH",
                    "/target_id",
                )
            on_page = await (await conn.execute(Q.target_on_any_page, params)).fetchone()
            if on_page is None:
                # A monitor new to the org's pages counts against max_public_components.
                await quotas.enforce(conn, org_id, "max_public_components", Q.count_org_components)
            if params["sort_order"] is None:
                nxt = await (await conn.execute(Q.next_sort_order, params)).fetchone()
                params["sort_order"] = int(nxt["n"]) if nxt else 0
            await conn.execute(Q.insert_component, params)
            await self._touch(conn, page_id)
            created = await self._component(conn, page_id, target_id)
            await self.audit(
                conn,
                "status_page.component_add",
                "status_page",
                page_id,
                after=msgspec.to_builtins(created),
            )
            return created

    async def update_component(
        self, page_id: uuid.UUID, target_id: uuid.UUID, data: ComponentUpdate
    ) -> Component:
        conn = await self.conn()
        async with conn.transaction():
            await self._lock(conn, page_id)
            before = await self._component(conn, page_id, target_id)
            params = {
                "page_id": page_id,
                "org_id": self.org.org_id,
                "target_id": target_id,
                "public_name": (
                    before.public_name
                    if data.public_name is UNSET
                    else v.public_name(data.public_name)
                ),
                "public_description": (
                    before.public_description
                    if data.public_description is UNSET
                    else v.public_description(data.public_description)
                ),
                "public_group": (
                    before.public_group
                    if data.public_group is UNSET
                    else v.public_group(data.public_group)
                ),
                "sort_order": (
                    before.sort_order if data.sort_order is UNSET else v.sort_order(data.sort_order)
                ),
            }
            await conn.execute(Q.update_component, params)
            await self._touch(conn, page_id)
            after = await self._component(conn, page_id, target_id)
            await self.audit(
                conn,
                "status_page.component_update",
                "status_page",
                page_id,
                before=msgspec.to_builtins(before),
                after=msgspec.to_builtins(after),
            )
            return after

    async def remove_component(self, page_id: uuid.UUID, target_id: uuid.UUID) -> None:
        conn = await self.conn()
        async with conn.transaction():
            await self._lock(conn, page_id)
            before = await self._component(conn, page_id, target_id)
            await conn.execute(
                Q.delete_component,
                {"page_id": page_id, "org_id": self.org.org_id, "target_id": target_id},
            )
            await self._touch(conn, page_id)
            await self.audit(
                conn,
                "status_page.component_remove",
                "status_page",
                page_id,
                before=msgspec.to_builtins(before),
            )

    async def reorder(self, page_id: uuid.UUID, ids: list[uuid.UUID]) -> list[Component]:
        conn = await self.conn()
        async with conn.transaction():
            await self._lock(conn, page_id)
            rows = await (
                await conn.execute(
                    Q.list_components, {"org_id": self.org.org_id, "page_id": page_id}
                )
            ).fetchall()
            current = {r["target_id"] for r in rows}
            if len(set(ids)) != len(ids) or set(ids) != current:
                raise ApiError(
                    400,
                    "INVALID_COMPONENT_ORDER",
                    "target_ids must list every component of the page exactly once",
                    "/target_ids",
                    details={"expected": len(current), "got": len(ids)},
                )
            await conn.execute(
                Q.reorder_components,
                {"org_id": self.org.org_id, "page_id": page_id, "target_ids": ids},
            )
            await self._touch(conn, page_id)
            await self.audit(
                conn,
                "status_page.component_reorder",
                "status_page",
                page_id,
                after={"target_ids": [str(i) for i in ids]},
            )
        return await self.components(page_id)


def _doc(page: StatusPage) -> dict[str, Any]:
    doc: dict[str, Any] = msgspec.to_builtins(page)
    return doc
