"""Request and response bodies of /api/v1/status-pages."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, ClassVar

import msgspec
from msgspec import UNSET, Meta, UnsetType

# What JSON Schema can say of them (the service still trims names and refuses control chars).
Slug = Annotated[
    str, Meta(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$", min_length=1, max_length=50)
]
Name = Annotated[str, Meta(min_length=1, max_length=100)]
Color = Annotated[str, Meta(pattern=r"^#[0-9a-fA-F]{6}$")]
Description = Annotated[str, Meta(max_length=500)]
Css = Annotated[str, Meta(max_length=20_000)]
PublicName = Annotated[str, Meta(min_length=1, max_length=200)]
PublicGroup = Annotated[str, Meta(min_length=1, max_length=100)]
PublicDescription = Annotated[str, Meta(max_length=1000)]
SortOrder = Annotated[int, Meta(ge=-1_000_000, le=1_000_000)]

FIELD_CODES: dict[str, str] = {
    "/name": "INVALID_NAME",
    "/slug": "INVALID_SLUG",
    "/description": "INVALID_DESCRIPTION",
    "/published": "INVALID_PUBLISHED",
    "/brand_color": "INVALID_BRAND_COLOR",
    "/custom_css": "INVALID_CUSTOM_CSS",
    "/hide_branding": "INVALID_HIDE_BRANDING",
}
COMPONENT_CODES: dict[str, str] = {
    "/target_id": "INVALID_TARGET_ID",
    "/public_name": "INVALID_PUBLIC_NAME",
    "/public_description": "INVALID_PUBLIC_DESCRIPTION",
    "/public_group": "INVALID_PUBLIC_GROUP",
    "/sort_order": "INVALID_SORT_ORDER",
    "/target_ids": "INVALID_TARGET_ID",
}


class StatusPageCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    __field_codes__: ClassVar[dict[str, str]] = FIELD_CODES

    name: Name
    # Lowercase letters, digits and hyphens, at most 50; unique across every org.
    slug: Slug
    description: Description = ""
    published: bool = False
    # ``#rrggbb``, the page's accent colour.
    brand_color: Color | None = None
    # Sanitised so it cannot leave its <style> element (every ``<`` is escaped).
    custom_css: Css = ""
    hide_branding: bool = False


class StatusPageUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """PATCH body: omit a field to leave it alone; ``brand_color: null`` clears it."""

    __field_codes__: ClassVar[dict[str, str]] = FIELD_CODES

    name: str | UnsetType = UNSET
    slug: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    published: bool | UnsetType = UNSET
    brand_color: str | UnsetType | None = UNSET
    custom_css: str | UnsetType = UNSET
    hide_branding: bool | UnsetType = UNSET


class StatusPage(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    name: str
    slug: str
    description: str
    published: bool
    brand_color: str | None
    custom_css: str
    hide_branding: bool
    # The page's live URL (``/status/{slug}`` on this deployment's public URL).
    url: str
    # The logo's URL, null when the page has none.
    logo_url: str | None
    component_count: int
    # The page's own host name once claimed (served at its ``/`` once verified).
    custom_domain: str | None
    domain_verified: bool
    created_at: datetime
    updated_at: datetime


class ComponentAdd(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    __field_codes__: ClassVar[dict[str, str]] = COMPONENT_CODES

    target_id: uuid.UUID
    public_name: PublicName | None = None
    public_description: PublicDescription | None = None
    public_group: PublicGroup | None = None
    # Position on the page; default: after the last component.
    sort_order: SortOrder | None = None


class ComponentUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """PATCH body: omit a field to leave it alone, JSON null clears it."""

    __field_codes__: ClassVar[dict[str, str]] = COMPONENT_CODES

    public_name: str | UnsetType | None = UNSET
    public_description: str | UnsetType | None = UNSET
    public_group: str | UnsetType | None = UNSET
    sort_order: int | UnsetType = UNSET


class ComponentOrder(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Every component's target id, in the order the page shows them."""

    __field_codes__: ClassVar[dict[str, str]] = COMPONENT_CODES

    target_ids: list[uuid.UUID]


class Component(msgspec.Struct, kw_only=True):
    target_id: uuid.UUID
    # The monitor's own name (the operator's view; the public sees ``display_name``).
    target_name: str
    public_name: str | None
    public_description: str | None
    public_group: str | None
    sort_order: int
    # What the public page shows: ``public_name``, else the monitor's name.
    display_name: str


class ComponentList(msgspec.Struct, kw_only=True):
    items: list[Component]


class DomainClaim(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    __field_codes__: ClassVar[dict[str, str]] = {"/domain": "INVALID_CUSTOM_DOMAIN"}

    domain: Annotated[str, Meta(min_length=3, max_length=253)]


class DomainStatus(msgspec.Struct, kw_only=True):
    domain: str
    verified: bool
    verified_at: datetime | None
    # Publish this TXT record, then POST …/domain/verify.
    txt_name: str
    txt_value: str
