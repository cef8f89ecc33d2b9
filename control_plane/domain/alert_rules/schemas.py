"""Request and response bodies of /api/v1/alert-rules."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, ClassVar, Literal, get_args

import msgspec
from msgspec import UNSET, UnsetType

Severity = Literal["critical", "major", "minor"]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Threshold = Annotated[int, msgspec.Meta(ge=1, le=100)]
MAX_CHANNELS = 20
MAX_TARGETS = 1000
MAX_TAGS = 50
Channels = Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=MAX_CHANNELS)]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[^\s,]+$")]

FIELD_CODES: dict[str, str] = {
    "/name": "INVALID_NAME",
    "/channels": "INVALID_ALERT_CONFIG",
    "/severity": "INVALID_SEVERITY",
    "/threshold": "INVALID_THRESHOLD",
    "/apply_to": "INVALID_APPLY_TO",
    "/enabled": "VALIDATION_ERROR",
}
FIELD_CHOICES: dict[str, tuple[str, ...]] = {"/severity": get_args(Severity)}


class ApplyTo(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The targets a rule covers: these ids, and every target carrying one of these tags (now or
    later)."""

    target_ids: Annotated[list[uuid.UUID], msgspec.Meta(max_length=MAX_TARGETS)] = msgspec.field(
        default_factory=list
    )
    tags: Annotated[list[Tag], msgspec.Meta(max_length=MAX_TAGS)] = msgspec.field(
        default_factory=list
    )


class AlertRule(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    name: str
    # Notification channels of the org, in order.
    channels: list[uuid.UUID]
    severity: str
    # Consecutive failing checks before the rule fires.
    threshold: int
    apply_to: ApplyTo
    enabled: bool
    write_source: str
    created_at: datetime
    updated_at: datetime


class AlertRuleCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    __field_codes__: ClassVar[dict[str, str]] = FIELD_CODES
    __field_choices__: ClassVar[dict[str, tuple[str, ...]]] = FIELD_CHOICES

    name: Name
    channels: Channels
    apply_to: ApplyTo
    severity: Severity = "critical"
    threshold: Threshold = 2
    enabled: bool = True


class AlertRuleUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    __field_codes__: ClassVar[dict[str, str]] = FIELD_CODES
    __field_choices__: ClassVar[dict[str, tuple[str, ...]]] = FIELD_CHOICES

    name: Name | UnsetType = UNSET
    channels: Channels | UnsetType = UNSET
    apply_to: ApplyTo | UnsetType = UNSET
    severity: Severity | UnsetType = UNSET
    threshold: Threshold | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET
