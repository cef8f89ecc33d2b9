"""Bodies of /operator/plans and /operator/orgs/{id}/plan: what an org may have and spend.

Every limit is optional: null (or omitted) is "no limit". Rates are requests per minute.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import UNSET, UnsetType

# ``gt=-1`` rather than ``ge=0``: the same for integers, and Litestar's document drops a bound
# of 0 (it would not state the minimum at all).
Count = Annotated[int, msgspec.Meta(gt=-1, le=1_000_000_000)]
Interval = Annotated[int, msgspec.Meta(ge=10, le=604_800)]
Rate = Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)]
PlanId = Annotated[str, msgspec.Meta(pattern="^[a-z0-9][a-z0-9_-]{0,62}$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]

LIMITS = (
    "max_targets",
    "min_check_interval_secs",
    "max_notification_channels",
    "max_status_pages",
    "max_public_components",
    "max_members",
    "max_share_links_per_monitor",
    "max_shared_monitors",
    "rate_api_writes",
    "rate_api_reads",
    "rate_bulk_ops",
    "rate_test_now",
    "rate_check_now",
)


class Limits(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    max_targets: Count | None = None
    min_check_interval_secs: Interval | None = None
    max_notification_channels: Count | None = None
    max_status_pages: Count | None = None
    max_public_components: Count | None = None
    max_members: Count | None = None
    max_share_links_per_monitor: Count | None = None
    max_shared_monitors: Count | None = None
    rate_api_writes: Rate | None = None
    rate_api_reads: Rate | None = None
    rate_bulk_ops: Rate | None = None
    rate_test_now: Rate | None = None
    rate_check_now: Rate | None = None


class PlanCreate(Limits, forbid_unknown_fields=True, kw_only=True):
    id: PlanId
    name: Name


class Plan(Limits, kw_only=True):
    id: str
    name: str
    orgs: int
    created_at: datetime
    updated_at: datetime


class PlanUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Only the fields sent change; null removes a limit."""

    name: Name | UnsetType = UNSET
    max_targets: Count | UnsetType | None = UNSET
    min_check_interval_secs: Interval | UnsetType | None = UNSET
    max_notification_channels: Count | UnsetType | None = UNSET
    max_status_pages: Count | UnsetType | None = UNSET
    max_public_components: Count | UnsetType | None = UNSET
    max_members: Count | UnsetType | None = UNSET
    max_share_links_per_monitor: Count | UnsetType | None = UNSET
    max_shared_monitors: Count | UnsetType | None = UNSET
    rate_api_writes: Rate | UnsetType | None = UNSET
    rate_api_reads: Rate | UnsetType | None = UNSET
    rate_bulk_ops: Rate | UnsetType | None = UNSET
    rate_test_now: Rate | UnsetType | None = UNSET
    rate_check_now: Rate | UnsetType | None = UNSET


class OrgPlanAssign(msgspec.Struct, forbid_unknown_fields=True):
    plan_id: PlanId
    # The org's own values over its plan's (null: the plan's); omitted: no overrides.
    overrides: Limits | None = None


class OrgLimits(msgspec.Struct):
    org_id: uuid.UUID
    plan_id: str
    # What applies: the overrides, else the plan's (null: no limit).
    limits: Limits
    overrides: Limits | None
