"""The public surface's wire types.

These structs are the only shapes ``/api/public/v1`` and the public pages are built from. None of
them has a field that could hold a target's url, host, headers, basic_auth, bearer_token, check
spec, error text or region: those cannot be serialised here, whatever a query returns
(``tests/control_plane/public/test_public_api.py`` checks the field names of every struct).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import msgspec

# A component's state, worst last.
ComponentStatus = Literal[
    "operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage"
]
OverallStatus = ComponentStatus
Phase = Literal["investigating", "identified", "monitoring", "resolved", "postmortem"]
Impact = Literal["critical", "major", "minor"]


class PublicDay(msgspec.Struct, kw_only=True):
    # UTC day, YYYY-MM-DD.
    date: str
    # (up + degraded) / checks that said something, in percent; null: no data that day.
    uptime_pct: float | None
    checks: int
    failed: int


class PublicComponentRef(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    name: str


class PublicComponent(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    name: str
    description: str | None
    group: str | None
    status: ComponentStatus
    # Over the last 90 days; null: no data.
    uptime_pct: float | None


class PublicIncidentUpdate(msgspec.Struct, kw_only=True):
    phase: Phase
    message: str
    created_at: datetime


class PublicIncident(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    title: str
    description: str | None
    # The latest update's phase (``resolved`` once it is over).
    status: Phase
    impact: Impact
    started_at: datetime
    resolved_at: datetime | None
    components: list[PublicComponentRef]
    # Newest first.
    updates: list[PublicIncidentUpdate]


class PublicMaintenance(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    title: str
    description: str
    status: Literal["active", "upcoming"]
    starts_at: datetime
    ends_at: datetime
    components: list[PublicComponentRef]


class PublicPageInfo(msgspec.Struct, kw_only=True):
    name: str
    slug: str
    description: str
    brand_color: str | None
    logo_url: str | None
    page_url: str


class PublicStatus(msgspec.Struct, kw_only=True):
    page: PublicPageInfo
    status: OverallStatus
    components: list[PublicComponent]
    active_incidents: list[PublicIncident]
    maintenance: list[PublicMaintenance]
    generated_at: datetime


class ComponentHistory(msgspec.Struct, kw_only=True):
    component: PublicComponentRef
    days: list[PublicDay]
    uptime_pct: float | None


class PublicIncidentPage(msgspec.Struct, kw_only=True):
    items: list[PublicIncident]
    total: int
    limit: int
    offset: int


class MaintenanceList(msgspec.Struct, kw_only=True):
    items: list[PublicMaintenance]


class Snapshot(msgspec.Struct, kw_only=True):
    """What one published page shows, built at most every few seconds and kept in Redis."""

    page_id: uuid.UUID
    org_id: uuid.UUID
    custom_css: str
    hide_branding: bool
    status: PublicStatus
    # Component id -> its last 90 UTC days, oldest first.
    history: dict[str, list[PublicDay]]


# What a share link shows of one monitor.
class SharedLatencyPoint(msgspec.Struct, kw_only=True):
    at: datetime
    p50: float | None
    p95: float | None


class SharedMonitor(msgspec.Struct, kw_only=True):
    name: str
    kind: str
    status: ComponentStatus
    uptime_24h: float | None
    uptime_7d: float | None
    uptime_30d: float | None
    latency: list[SharedLatencyPoint]
    incidents: list[PublicIncident]
    days: list[PublicDay]
