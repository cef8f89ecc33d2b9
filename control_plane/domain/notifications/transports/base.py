"""What every transport shares: the alert it renders, the request it makes, its validation
helpers and its registry entry (``TransportInfo``), the way ``shared/checks`` describes a check
kind.

A transport module defines its config struct (``tag=<kind>``, tag field ``type``), a
``validate(config, ctx)`` that raises ``INVALID_CHANNEL_CONFIG`` with the offending field, and a
``build(config, alert, ctx)`` that returns the HTTP requests one delivery makes (PagerDuty's test
is two). Email delivers through SMTP instead and sets ``send``. Nothing here knows the database.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec

from control_plane.core.errors import ApiError
from control_plane.settings import MailSettings, NotifySettings

REDACTED = "***"
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


class Config(msgspec.Struct, forbid_unknown_fields=True, tag_field="type", kw_only=True):
    """Base of every transport's config."""


@dataclass(frozen=True, slots=True)
class Alert:
    """One notification to render: an incident's open, reminder or recovery, or a test."""

    kind: str  # open | reminder | recovery | test
    incident_id: str
    target_id: str
    target_name: str
    target_kind: str
    target_address: str
    status: str  # down | degraded | up
    started_at: datetime
    ended_at: datetime | None = None
    cause: str | None = None
    severity: str = "critical"
    channel_name: str = ""
    # Set for a grouped message (an alert storm): the alerts it stands for.
    group: tuple[Alert, ...] = ()

    @property
    def event(self) -> str:
        return "monitor.up" if self.kind == "recovery" else "monitor.down"

    @property
    def urgent(self) -> bool:
        return self.kind in ("open", "reminder", "test") and self.severity == "critical"


@dataclass(frozen=True, slots=True)
class HttpRequest:
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"


@dataclass(frozen=True, slots=True)
class Context:
    """What validation and rendering may look at besides the config."""

    settings: NotifySettings
    allow_private: bool = False
    now: datetime | None = None
    mail: MailSettings | None = None


def invalid(name: str, message: str) -> ApiError:
    return ApiError(400, "INVALID_CHANNEL_CONFIG", message, f"/config/{name}")


def require(value: str, name: str, what: str = "must not be empty") -> None:
    if not value or not value.strip():
        raise invalid(name, f"{name} {what}")


def https_url(url: str, name: str, ctx: Context, *, allow_http: bool = False) -> None:
    """An absolute https URL (http too on a deployment that delivers to private addresses,
    for the kinds that may point at an internal server)."""
    require(url, name)
    if len(url) > 2000:
        raise invalid(name, f"{name} must be at most 2000 characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise invalid(name, f"{name} is not a valid URL") from None
    schemes = ("https", "http") if (allow_http and ctx.allow_private) else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise invalid(name, f"{name} must be an https URL")
    if any(c.isspace() for c in url) or "\x00" in url:
        raise invalid(name, f"{name} is not a valid URL")


def pinned(url: str, name: str, hosts: tuple[str, ...], kind: str, path: str = "") -> None:
    """A branded kind's URL must be on its provider's hosts (``*.x`` matches subdomains)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    ok = any(host == h or (h.startswith("*.") and host.endswith(h[1:])) for h in hosts)
    if not ok or (path and not parts.path.startswith(path)):
        where = ", ".join(hosts) + (f" with a {path} path" if path else "")
        raise invalid(
            name, f"a {kind} URL must be on {where}; use the generic webhook kind for anything else"
        )


def rebase(kind: str, url: str, settings: NotifySettings) -> str:
    """The URL a delivery goes to: the deployment may point a kind at a proxy or mirror
    (``base_urls``), which replaces the URL's scheme and host."""
    base = settings.base_urls.get(kind)
    if not base:
        return url
    b, u = urlsplit(base), urlsplit(url)
    return urlunsplit((b.scheme, b.netloc, b.path.rstrip("/") + u.path, u.query, ""))


def cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _duration(alert: Alert) -> str:
    if alert.ended_at is None:
        return ""
    secs = int((alert.ended_at - alert.started_at).total_seconds())
    h, rest = divmod(max(0, secs), 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def title(alert: Alert) -> str:
    if alert.group:
        n = len(alert.group)
        return f"{n} monitors up" if alert.kind == "recovery" else f"{n} monitors down"
    if alert.kind == "test":
        return f"[TEST] Vigil test alert for {alert.channel_name or 'this channel'}"
    if alert.kind == "recovery":
        return f"UP: {alert.target_name} recovered"
    prefix = "REMINDER: still down" if alert.kind == "reminder" else alert.status.upper()
    return f"{prefix}: {alert.target_name}"


def text(alert: Alert) -> str:
    """The human message every chat-style transport sends."""
    if alert.group:
        lines = [title(alert) + ":"]
        lines += [f"• {a.target_name} ({a.target_address})" for a in alert.group]
        return "\n".join(lines)
    if alert.kind == "test":
        return title(alert) + ": this is a synthetic alert; nothing is down."
    if alert.kind == "recovery":
        return (
            f"✅ {title(alert)} after {_duration(alert)} ({alert.target_address}). "
            f"Incident {alert.incident_id}."
        )
    cause = f" — {alert.cause}" if alert.cause else ""
    return (
        f"🔴 {title(alert)} ({alert.target_address}){cause}. Incident {alert.incident_id} since "
        f"{alert.started_at.isoformat(timespec='seconds')}."
    )


def event_json(alert: Alert, now: datetime) -> dict[str, Any]:
    """The webhook event (the ``monitor.down`` / ``monitor.up`` shape)."""
    return {
        "event": alert.event,
        "kind": alert.kind,
        "timestamp": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "monitor": {
            "id": alert.target_id,
            "name": alert.target_name,
            "type": alert.target_kind,
            "target": alert.target_address,
            "status": "up" if alert.kind == "recovery" else alert.status,
        },
        "incident": {
            "id": alert.incident_id,
            "started_at": alert.started_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "ended_at": (
                alert.ended_at.isoformat(timespec="seconds").replace("+00:00", "Z")
                if alert.ended_at
                else None
            ),
            "error_message": alert.cause,
            "severity": alert.severity,
        },
        "test": alert.kind == "test",
    }


JSON = msgspec.json.Encoder()


def json_request(url: str, payload: Any, headers: dict[str, str] | None = None) -> HttpRequest:
    return HttpRequest(
        url=url,
        body=JSON.encode(payload),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


Validate = Callable[[Any, Context], None]
Build = Callable[[Any, Alert, Context], list[HttpRequest]]
Send = Callable[[Any, Alert, Context], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class TransportInfo:
    kind: str
    config: type[Config]
    validate: Validate
    build: Build | None = None
    send: Send | None = None
    # Top-level config fields sealed at rest and read back as "***" (``secret_fields``: the
    # ones of this config, when they depend on it).
    secrets: tuple[str, ...] = ()
    secret_fields: Callable[[Any], tuple[str, ...]] | None = None
    # The customer-controlled outbound URL field (SSRF-checked at create).
    url_field: str | None = None
    # Chat-style: an alert storm is sent as one grouped message.
    chat: bool = False

    def secrets_of(self, cfg: Any) -> tuple[str, ...]:
        return self.secret_fields(cfg) if self.secret_fields is not None else self.secrets
