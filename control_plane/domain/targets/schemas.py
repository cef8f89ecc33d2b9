"""Request and response bodies of /api/v1/targets."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import msgspec
from msgspec import UNSET, UnsetType

from shared.checks import CheckSpec

WriteSource = Literal["ui", "api", "terraform"]


class RegionCount(msgspec.Struct, forbid_unknown_fields=True):
    count: int


# "any" | "majority" | "all" | {"count": N}
RegionPolicy = str | RegionCount


class AlertBinding(msgspec.Struct, forbid_unknown_fields=True):
    channel_id: str


class TargetCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    check: CheckSpec
    # Seconds between ticks; defaults by kind (60 for http/tcp, 86400 for tls_cert/domain_expiry).
    interval: int | None = None
    enabled: bool = True
    tags: list[str] = msgspec.field(default_factory=list)
    alerts: list[AlertBinding] = msgspec.field(default_factory=list)
    alert_confirmations: int = 2
    notify_recovery: bool = True
    renotify_interval_secs: int = 3600
    region_policy: RegionPolicy = "majority"
    # Read-only and decided server-side; accepted and ignored so GET bodies can be re-sent.
    write_source: str | UnsetType | None = UNSET


class TargetUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """PATCH body: every field optional; omit ``check`` to keep the stored credentials."""

    name: str | UnsetType = UNSET
    check: CheckSpec | UnsetType = UNSET
    interval: int | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET
    tags: list[str] | UnsetType = UNSET
    alerts: list[AlertBinding] | UnsetType = UNSET
    alert_confirmations: int | UnsetType = UNSET
    notify_recovery: bool | UnsetType = UNSET
    renotify_interval_secs: int | UnsetType = UNSET
    region_policy: RegionPolicy | UnsetType = UNSET
    write_source: str | UnsetType | None = UNSET


class Target(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    name: str
    check: CheckSpec
    interval: int
    enabled: bool
    tags: list[str]
    alerts: list[AlertBinding]
    alert_confirmations: int
    notify_recovery: bool
    renotify_interval_secs: int
    region_policy: RegionPolicy
    regions: list[str]
    created_at: datetime
    updated_at: datetime
    write_source: WriteSource


class TargetRegions(msgspec.Struct, forbid_unknown_fields=True):
    regions: list[str]
