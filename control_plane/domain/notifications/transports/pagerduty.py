"""PagerDuty Events API v2: an open (and a reminder) triggers, a recovery resolves, correlated
by ``dedup_key`` = the incident id. Severity: critical -> critical, major -> error, minor ->
warning. A test is a trigger and a resolve on a throwaway key."""

from __future__ import annotations

import re
import uuid
from typing import Any

from .base import (
    Alert,
    Config,
    Context,
    HttpRequest,
    TransportInfo,
    cap,
    invalid,
    json_request,
    rebase,
    title,
)

API = "https://events.pagerduty.com/v2/enqueue"
SEVERITY = {"critical": "critical", "major": "error", "minor": "warning"}


class PagerDutyConfig(Config, tag="pagerduty"):
    routing_key: str


def validate(cfg: PagerDutyConfig, ctx: Context) -> None:
    if not re.match(r"^[A-Za-z0-9]{32}$", cfg.routing_key):
        raise invalid("routing_key", "routing_key must be the 32-character integration key")


def _event(cfg: PagerDutyConfig, alert: Alert, action: str, key: str) -> dict[str, Any]:
    event: dict[str, Any] = {
        "routing_key": cfg.routing_key,
        "event_action": action,
        "dedup_key": key,
    }
    if action == "trigger":
        event["payload"] = {
            "summary": cap(title(alert) + (f": {alert.cause}" if alert.cause else ""), 1024),
            "source": alert.target_address or alert.target_name,
            "severity": SEVERITY.get(alert.severity, "critical"),
            "custom_details": {
                "monitor": alert.target_name,
                "monitor_id": alert.target_id,
                "incident_id": alert.incident_id,
                "started_at": alert.started_at.isoformat(),
            },
        }
    return event


def build(cfg: PagerDutyConfig, alert: Alert, ctx: Context) -> list[HttpRequest]:
    url = rebase("pagerduty", API, ctx.settings)
    if alert.kind == "test":
        key = f"vigil-test-{uuid.uuid4()}"
        return [
            json_request(url, _event(cfg, alert, "trigger", key)),
            json_request(url, _event(cfg, alert, "resolve", key)),
        ]
    action = "resolve" if alert.kind == "recovery" else "trigger"
    return [json_request(url, _event(cfg, alert, action, alert.incident_id))]


KIND = TransportInfo("pagerduty", PagerDutyConfig, validate, build, secrets=("routing_key",))
