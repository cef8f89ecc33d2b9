"""Request and response bodies of /operator/regions and the tenant catalog /api/v1/regions."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import msgspec
from msgspec import UNSET, UnsetType

# A wrong type under one of these pointers answers with the field's own code (unknown and missing
# fields stay UNKNOWN_FIELD / MISSING_FIELD); see errors.decode_body.
FIELD_CODES: dict[str, str] = {
    "/id": "INVALID_REGION_ID",
    "/name": "INVALID_NAME",
    "/location": "INVALID_LOCATION",
}


class RegionCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    __field_codes__: ClassVar[dict[str, str]] = FIELD_CODES

    # A slug: ``^[a-z0-9][a-z0-9-]{0,62}$``; it never changes once created.
    id: str
    name: str
    location: str = ""
    enabled: bool = True
    # Agents of this region may probe private, loopback and link-local addresses (the SSRF
    # guard is off for its checks), as with the deployment-wide ``allow_private_targets``.
    allow_private_targets: bool = False


class RegionUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """PATCH body: every field optional; an omitted field keeps its value."""

    __field_codes__: ClassVar[dict[str, str]] = FIELD_CODES

    name: str | UnsetType = UNSET
    location: str | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET
    allow_private_targets: bool | UnsetType = UNSET


class Region(msgspec.Struct, kw_only=True):
    """A region as operators see it."""

    id: str
    name: str
    location: str
    enabled: bool
    # The region's own SSRF switch; the deployment-wide setting, when on, applies on top.
    allow_private_targets: bool
    created_at: datetime
    updated_at: datetime


class RegionSummary(msgspec.Struct, kw_only=True):
    """A region of the tenant catalog (enabled regions only)."""

    id: str
    name: str
    location: str
