"""Request and response bodies of /operator/regions and the tenant catalog /api/v1/regions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar, Literal

import msgspec
from msgspec import UNSET, UnsetType

# A wrong type under one of these pointers answers with the field's own code (unknown and missing
# fields stay UNKNOWN_FIELD / MISSING_FIELD); see errors.decode_body.
FIELD_CODES: dict[str, str] = {
    "/id": "INVALID_REGION_ID",
    "/name": "INVALID_NAME",
    "/location": "INVALID_LOCATION",
    "/access": "INVALID_REGION_ACCESS",
}

# ``public``: every org may probe from the region. ``restricted``: only the orgs granted it
# (``PUT /operator/regions/{id}/grants/{org_id}``); to every other org it does not exist.
RegionAccess = Literal["public", "restricted"]


class RegionCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    __field_codes__: ClassVar[dict[str, str]] = FIELD_CODES

    # A slug: ``^[a-z0-9][a-z0-9-]{0,62}$``; it never changes once created.
    id: str
    name: str
    location: str = ""
    enabled: bool = True
    # The region's agents sit in a network worth reaching: private, loopback and link-local
    # addresses may be probed from it, but only by orgs whose grant allows it too.
    allow_private_targets: bool = False
    access: RegionAccess = "public"


class RegionUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """PATCH body: every field optional; an omitted field keeps its value."""

    __field_codes__: ClassVar[dict[str, str]] = FIELD_CODES

    name: str | UnsetType = UNSET
    location: str | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET
    allow_private_targets: bool | UnsetType = UNSET
    access: RegionAccess | UnsetType = UNSET


class Region(msgspec.Struct, kw_only=True):
    """A region as operators see it."""

    id: str
    name: str
    location: str
    enabled: bool
    # The region's own SSRF switch: private addresses may be probed from it by the orgs whose
    # grant allows it (the deployment-wide setting, when on, allows every org everywhere).
    allow_private_targets: bool
    access: RegionAccess
    created_at: datetime
    updated_at: datetime


class RegionSummary(msgspec.Struct, kw_only=True):
    """A region of the tenant catalog: enabled, and public or granted to the org."""

    id: str
    name: str
    location: str
    # Whether this org's targets probed from here may point at private addresses.
    allow_private_targets: bool


class GrantUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """PUT body of a grant: the org may use the region (if restricted) and, with
    ``allow_private_targets``, probe private addresses from it (if the region allows them)."""

    allow_private_targets: bool = False


class RegionGrant(msgspec.Struct, kw_only=True):
    region: str
    org_id: uuid.UUID
    allow_private_targets: bool
    created_at: datetime
    updated_at: datetime
