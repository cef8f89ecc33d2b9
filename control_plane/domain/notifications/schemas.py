"""Request and response bodies of /api/v1/notification-channels and incident notifications."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

WriteSource = Literal["ui", "api", "terraform"]


class ChannelCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``config`` is type-tagged (``{"type": "slack", …}``); see the README for every kind."""

    name: str
    config: dict[str, Any]
    enabled: bool = True


class ChannelUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Every field optional; omit ``config`` to keep the stored secrets (or send ``"***"`` in a
    secret field of a config of the same kind)."""

    name: str | UnsetType = UNSET
    config: dict[str, Any] | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET


class ChannelTest(msgspec.Struct, forbid_unknown_fields=True):
    config: dict[str, Any]


class Channel(msgspec.Struct):
    id: uuid.UUID
    name: str
    kind: str
    enabled: bool
    # Secret fields read back as "***".
    config: dict[str, Any]
    write_source: WriteSource
    # Email channels: false until the verification link is followed. Other kinds: true.
    verified: bool
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


class TestResult(msgspec.Struct):
    ok: bool
    status_code: int | None
    latency_ms: float


class DeliveryAttempt(msgspec.Struct):
    at: datetime
    outcome: str
    status_code: int | None
    latency_ms: float | None
    error: str | None


class Notification(msgspec.Struct):
    id: uuid.UUID
    channel_id: uuid.UUID
    channel_name: str
    channel_kind: str
    kind: str
    state: str
    # Waiting for a maintenance window to end.
    held: bool
    attempts: int
    due_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    last_error: str | None
    attempt_log: list[DeliveryAttempt]


class NotificationList(msgspec.Struct):
    items: list[Notification]


class Verified(msgspec.Struct):
    channel_id: uuid.UUID
    verified: bool
