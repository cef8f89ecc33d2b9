"""Request and response bodies of /api/v1/targets."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, get_args

import msgspec
from msgspec import UNSET, UnsetType

from control_plane.domain.heartbeats.schemas import HeartbeatEndpoint
from shared.checks import (
    KINDS,
    MAX_INTERVAL,
    CheckSpec,
    DnsMatch,
    DnsRecordType,
    HttpMethod,
    all_field_codes,
)
from shared.checks.common import stated

WriteSource = Literal["ui", "api", "terraform"]
# 1 s to a week (``INVALID_INTERVAL``), as the document states it; the floor of each kind and
# plan is a 422 (``MIN_CHECK_INTERVAL``).
Interval = Annotated[int, stated(1, MAX_INTERVAL)]


class RegionCount(msgspec.Struct, forbid_unknown_fields=True):
    count: int


# "any" | "majority" | "all" | {"count": N}
RegionPolicy = str | RegionCount


class AlertBinding(msgspec.Struct, forbid_unknown_fields=True):
    channel_id: str


# A wrong type or value under one of these pointers answers with the field's own code
# (unknown and missing fields stay UNKNOWN_FIELD / MISSING_FIELD); see decoding.decode_body. The
# check's own fields come from its kind's module (``shared.checks.<kind>``).
FIELD_CODES: dict[str, str] = {
    "/name": "INVALID_NAME",
    "/interval": "INVALID_INTERVAL",
    "/tags": "INVALID_TAG",
    "/alerts": "INVALID_ALERT_CONFIG",
    "/alert_confirmations": "INVALID_ALERT_CONFIG",
    "/renotify_interval_secs": "INVALID_ALERT_CONFIG",
    "/region_policy": "INVALID_REGION_POLICY",
    **{f"/check{pointer}": code for pointer, code in all_field_codes().items()},
}

# What a refused value of these fields could have been (listed in the error's message).
FIELD_CHOICES: dict[str, tuple[str, ...]] = {
    "/check/type": tuple(KINDS),
    "/check/method": get_args(HttpMethod),
    "/check/expected_status/kind": ("exact", "range", "one_of"),
    "/check/record_type": get_args(DnsRecordType),
    "/check/match": get_args(DnsMatch),
}


class TargetCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    __field_codes__: ClassVar[dict[str, str]] = FIELD_CODES
    __field_choices__: ClassVar[dict[str, tuple[str, ...]]] = FIELD_CHOICES

    name: str
    check: CheckSpec
    # Seconds between ticks; defaults by kind (60 for http/tcp, 86400 for tls_cert/domain_expiry).
    interval: Interval | None = None
    enabled: bool = True
    tags: list[str] = msgspec.field(default_factory=list)
    alerts: list[AlertBinding] = msgspec.field(default_factory=list)
    alert_confirmations: int = 2
    notify_recovery: bool = True
    renotify_interval_secs: int = 3600
    region_policy: RegionPolicy = "majority"
    # Read-only and decided server-side from the request: any value sent here is ignored.
    write_source: Any = UNSET


class TargetUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """PATCH body: every field optional; omit ``check`` to keep the stored credentials."""

    __field_codes__: ClassVar[dict[str, str]] = FIELD_CODES
    __field_choices__: ClassVar[dict[str, tuple[str, ...]]] = FIELD_CHOICES

    name: str | UnsetType = UNSET
    check: CheckSpec | UnsetType = UNSET
    interval: Interval | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET
    tags: list[str] | UnsetType = UNSET
    alerts: list[AlertBinding] | UnsetType = UNSET
    alert_confirmations: int | UnsetType = UNSET
    notify_recovery: bool | UnsetType = UNSET
    renotify_interval_secs: int | UnsetType = UNSET
    region_policy: RegionPolicy | UnsetType = UNSET
    write_source: Any = UNSET


CurrentStatus = Literal["up", "down", "degraded", "error", "unknown", "paused"]
CURRENT_STATUSES: tuple[str, ...] = get_args(CurrentStatus)


class LastResult(msgspec.Struct, kw_only=True):
    """The newest conclusive result of any of the target's regions."""

    at: datetime
    status: str
    region: str
    latency_ms: float | None
    error: str | None


class Last24h(msgspec.Struct, kw_only=True):
    """Checks of the last 24 complete hours (hourly rollups); uptime null with no check."""

    checks: int
    checks_up: int
    uptime_pct: float | None


class OpenIncident(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    started_at: datetime
    status: str
    state: str


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
    # Heartbeat targets only: where the job pings and what it last reported.
    heartbeat: HeartbeatEndpoint | UnsetType = UNSET
    # The current state (view ``target_current``): paused when disabled, else the open
    # incident's status, else the worst region's last status, else unknown.
    status: CurrentStatus = "unknown"
    last_result: LastResult | None = None
    last_24h: Last24h | None = None
    incident: OpenIncident | None = None


class TargetRegions(msgspec.Struct, forbid_unknown_fields=True):
    regions: list[str]


# -- fleet operations: bulk create, bulk actions ------------------------------------------------

MAX_BULK = 10_000


class TargetBulkCreate(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /targets/bulk``: up to 10,000 target bodies, each exactly a ``TargetCreate``
    (validated item by item: the errors name the item's ``index``)."""

    __field_codes__: ClassVar[dict[str, str]] = {"/targets": "INVALID_BULK"}

    targets: list[Any]


class BulkItemError(msgspec.Struct, kw_only=True):
    index: int
    status: int
    code: str
    field: str | None
    message: str
    details: dict[str, Any] | None = None


class TargetBulkCreated(msgspec.Struct, kw_only=True):
    created: int
    items: list[Target]


class ActionEnable(msgspec.Struct, tag="enable", tag_field="type", forbid_unknown_fields=True):
    pass


class ActionDisable(msgspec.Struct, tag="disable", tag_field="type", forbid_unknown_fields=True):
    pass


class ActionDelete(msgspec.Struct, tag="delete", tag_field="type", forbid_unknown_fields=True):
    pass


class ActionTagAdd(msgspec.Struct, tag="tag_add", tag_field="type", forbid_unknown_fields=True):
    tags: list[str]


class ActionTagRemove(
    msgspec.Struct, tag="tag_remove", tag_field="type", forbid_unknown_fields=True
):
    tags: list[str]


class ActionUpdate(
    msgspec.Struct, tag="update", tag_field="type", forbid_unknown_fields=True, kw_only=True
):
    """The bulk update of plain fields on many ids (omit a field to keep it)."""

    interval: Interval | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET
    alert_confirmations: int | UnsetType = UNSET
    notify_recovery: bool | UnsetType = UNSET
    renotify_interval_secs: int | UnsetType = UNSET


BulkAction = (
    ActionEnable | ActionDisable | ActionDelete | ActionTagAdd | ActionTagRemove | ActionUpdate
)

BULK_ACTION_CODES: dict[str, str] = {
    "/ids": "INVALID_IDS",
    "/action": "INVALID_ACTION",
    "/action/type": "INVALID_ACTION",
    "/action/tags": "INVALID_TAG",
    "/action/interval": "INVALID_INTERVAL",
    "/action/alert_confirmations": "INVALID_ALERT_CONFIG",
    "/action/renotify_interval_secs": "INVALID_ALERT_CONFIG",
}


class TargetBulkAction(msgspec.Struct, forbid_unknown_fields=True):
    __field_codes__: ClassVar[dict[str, str]] = BULK_ACTION_CODES
    __field_choices__: ClassVar[dict[str, tuple[str, ...]]] = {
        "/action/type": ("enable", "disable", "delete", "tag_add", "tag_remove", "update")
    }

    ids: list[str]
    action: BulkAction


class BulkFailure(msgspec.Struct):
    id: str
    code: str
    message: str


class TargetBulkActionResult(msgspec.Struct):
    succeeded: list[str]
    failed: list[BulkFailure]


class TagCount(msgspec.Struct):
    name: str
    count: int
