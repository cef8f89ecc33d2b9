"""Targets between their stored rows and what the API shows: the read shape, the audit log's
copy of it, and the full set of mutable fields a create or a merged PATCH writes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import msgspec
from psycopg.types.json import Jsonb

from shared.checks import CheckSpec

from .codec import redact_headers, redacted_check
from .schemas import (
    AlertBinding,
    Last24h,
    LastResult,
    OpenIncident,
    RegionCount,
    RegionPolicy,
    Target,
)


def audited(target: Target) -> dict[str, Any]:
    """A target as the audit log keeps it: the read shape (credentials already ``***``) without
    the heartbeat endpoint, whose token is itself a credential."""
    doc: dict[str, Any] = msgspec.to_builtins(target)
    doc.pop("heartbeat", None)
    for live in ("status", "last_result", "last_24h", "incident"):
        doc.pop(live, None)
    return doc


def policy_to_json(policy: RegionPolicy) -> Any:
    return msgspec.to_builtins(policy)


def policy_from_json(raw: Any) -> RegionPolicy:
    return RegionCount(count=int(raw["count"])) if isinstance(raw, dict) else str(raw)


def _current(row: dict[str, Any]) -> dict[str, Any]:
    """The current-state columns (``target_current``), when the query joined them."""
    if "current_status" not in row:
        return {}
    last = None
    if row["last_checked_at"] is not None:
        latency = row["last_latency_ms"]
        last = LastResult(
            at=row["last_checked_at"],
            status=row["last_result_status"],
            region=row["last_region"],
            latency_ms=None if latency is None else round(float(latency), 3),
            error=row["last_result_error"],
        )
    incident = None
    if row["incident_id"] is not None:
        incident = OpenIncident(
            id=row["incident_id"],
            started_at=row["incident_started_at"],
            status=row["incident_status"],
            state=row["incident_state"],
        )
    day = None
    if "checks_24h" in row:
        checks = int(row["checks_24h"] or 0)
        up = int(row["up_24h"] or 0)
        day = Last24h(
            checks=checks,
            checks_up=up,
            uptime_pct=round(100.0 * up / checks, 3) if checks else None,
        )
    return {
        "status": row["current_status"],
        "last_result": last,
        "last_24h": day,
        "incident": incident,
    }


def row_to_target(row: dict[str, Any], check: CheckSpec | None = None) -> Target:
    """A target's read from its row (``check``: its redacted spec, when already made)."""
    return Target(
        **_current(row),
        id=row["id"],
        name=row["name"],
        check=check if check is not None else redacted_check(row["spec"], row["secrets"]),
        interval=row["interval_secs"],
        enabled=row["enabled"],
        tags=list(row["tags"]),
        alerts=[AlertBinding(channel_id=str(c)) for c in row["alert_ids"]],
        alert_confirmations=row["alert_confirmations"],
        notify_recovery=row["notify_recovery"],
        renotify_interval_secs=row["renotify_interval_secs"],
        region_policy=policy_from_json(row["region_policy"]),
        regions=list(row["regions"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        write_source=row["write_source"],
    )


_TARGETS = msgspec.json.Decoder(list[Target])


def targets_from_json(items: str | bytes) -> list[Target]:
    """The list's page from ``list_targets_json`` (one JSON array, keys named as the fields):
    decoded straight into ``Target``, then what ``row_to_target`` does in Python on top of the
    row: secret header values redacted, the latency rounded, the uptime percentage."""
    targets = _TARGETS.decode(items)
    for target in targets:
        redact_headers(target.check)
        last = target.last_result
        if last is not None and last.latency_ms is not None:
            last.latency_ms = round(last.latency_ms, 3)
        day = target.last_24h
        if day is not None and day.checks:
            day.uptime_pct = round(100.0 * day.checks_up / day.checks, 3)
    return targets


@dataclass(slots=True)
class Fields:
    """The full set of mutable fields, as stored, after a create or a merged PATCH."""

    name: str
    kind: str
    spec: dict[str, Any]
    secrets: dict[str, str]
    interval: int
    enabled: bool
    tags: list[str]
    alert_confirmations: int
    notify_recovery: bool
    renotify_interval_secs: int
    region_policy: RegionPolicy

    def params(self, org_id: uuid.UUID, target_id: uuid.UUID, write_source: str) -> dict[str, Any]:
        return {
            "id": target_id,
            "org_id": org_id,
            "name": self.name,
            "kind": self.kind,
            "spec": Jsonb(self.spec),
            "secrets": Jsonb(self.secrets),
            "interval_secs": self.interval,
            "enabled": self.enabled,
            "tags": self.tags,
            "alert_confirmations": self.alert_confirmations,
            "notify_recovery": self.notify_recovery,
            "renotify_interval_secs": self.renotify_interval_secs,
            "region_policy": Jsonb(policy_to_json(self.region_policy)),
            "write_source": write_source,
        }
