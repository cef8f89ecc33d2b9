"""Request and response bodies of /api/v1/maintenance."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, ClassVar, Literal

import msgspec
from msgspec import UNSET, UnsetType

WindowStatus = Literal["active", "upcoming", "past"]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Description = Annotated[str, msgspec.Meta(max_length=5000)]
Time = Annotated[datetime, msgspec.Meta(tz=True)]
# At most this many targets in one window (more: make it org-wide).
MAX_TARGETS = 1000
TargetIds = Annotated[list[uuid.UUID], msgspec.Meta(max_length=MAX_TARGETS)]

FIELD_CODES: dict[str, str] = {
    "/title": "INVALID_TITLE",
    "/description": "INVALID_DESCRIPTION",
    "/starts_at": "INVALID_TIME",
    "/ends_at": "INVALID_TIME",
    "/target_ids": "INVALID_TARGET_IDS",
}


class MaintenanceWindow(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    title: str
    description: str
    starts_at: datetime
    ends_at: datetime
    # Every target of the org (then target_ids is empty), else the targets listed.
    all_targets: bool
    target_ids: list[uuid.UUID]
    # Where it is now: ``upcoming`` (starts later), ``active`` or ``past`` (ended).
    status: str
    # Where it was last written from: ui, api or terraform (decided from the request).
    write_source: str
    created_at: datetime
    updated_at: datetime


class MaintenanceCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A window over [starts_at, ends_at): ``ends_at`` after ``starts_at`` and in the future.
    ``target_ids`` omitted or empty: the whole org."""

    __field_codes__: ClassVar[dict[str, str]] = FIELD_CODES

    title: Title
    description: Description = ""
    starts_at: Time
    ends_at: Time
    target_ids: TargetIds = msgspec.field(default_factory=list)


class MaintenanceUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Omitted fields are left alone; ``target_ids`` null or empty makes the window org-wide."""

    __field_codes__: ClassVar[dict[str, str]] = FIELD_CODES

    title: Title | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    starts_at: Time | UnsetType = UNSET
    ends_at: Time | UnsetType = UNSET
    target_ids: TargetIds | UnsetType | None = UNSET
