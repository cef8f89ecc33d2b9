"""Request and response bodies of /api/v1/notification-channels and incident notifications."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import UNSET, UnsetType

from .transports.registry import MANAGED, TRANSPORTS, BodyConfig

WriteSource = Literal["ui", "api", "terraform"]


# A wrong type or value under these pointers answers with the field's code (decoding.py).
FIELD_CODES: dict[str, str] = {"/name": "CHANNEL_NAME_INVALID", "/config": "INVALID_CHANNEL_CONFIG"}
FIELD_CHOICES: dict[str, tuple[str, ...]] = {"/config/type": (*TRANSPORTS, *sorted(MANAGED))}
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class ChannelCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``config`` is type-tagged (``{"type": "slack", …}``); see the README for every kind."""

    __field_codes__: ClassVar[dict[str, str]] = FIELD_CODES
    __field_choices__: ClassVar[dict[str, tuple[str, ...]]] = FIELD_CHOICES

    name: Name
    config: BodyConfig
    enabled: bool = True


class ChannelUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Every field optional; omit ``config`` to keep the stored secrets (a config still
    carrying ``"***"`` is 400 ``REDACTION_SENTINEL``)."""

    __field_codes__: ClassVar[dict[str, str]] = FIELD_CODES
    __field_choices__: ClassVar[dict[str, tuple[str, ...]]] = FIELD_CHOICES

    name: Name | UnsetType = UNSET
    config: BodyConfig | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET


class ChannelTest(msgspec.Struct, forbid_unknown_fields=True):
    __field_codes__: ClassVar[dict[str, str]] = FIELD_CODES
    __field_choices__: ClassVar[dict[str, tuple[str, ...]]] = FIELD_CHOICES

    config: BodyConfig


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


class LinkCodeCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """An optional name for the channel the code will create (else the chat's title or the
    WhatsApp profile name)."""

    name: str | None = None


class LinkCode(msgspec.Struct, kw_only=True):
    """A link code of a managed kind: ``code`` and the deep links only in the minting answer
    (the raw code is shown once; only its hash is stored). Telegram: ``deep_link`` (a private
    chat) and ``group_deep_link``; WhatsApp: ``deep_link`` (wa.me with the code prefilled)."""

    id: uuid.UUID
    state: Literal["pending", "consumed", "expired"]
    expires_at: datetime
    channel_id: uuid.UUID | None = None
    code: str | None = None
    deep_link: str | None = None
    group_deep_link: str | None = None
