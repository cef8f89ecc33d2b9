"""Request and response bodies of /api/v1/webhooks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, ClassVar

import msgspec
from msgspec import UNSET, UnsetType

Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
Events = Annotated[list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(max_length=20)]
Secret = Annotated[str, msgspec.Meta(max_length=500)]

FIELD_CODES: dict[str, str] = {
    "/url": "INVALID_WEBHOOK_URL",
    "/events": "UNKNOWN_EVENT",
    "/secret": "INVALID_WEBHOOK_SECRET",
    "/enabled": "VALIDATION_ERROR",
}


class Webhook(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    url: str
    events: list[str]
    # "***" when the subscription signs its deliveries, else null.
    secret: str | None
    enabled: bool
    write_source: str
    circuit_open_until: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    __field_codes__: ClassVar[dict[str, str]] = FIELD_CODES

    url: Url
    events: Events
    # At least 16 characters; deliveries are then signed (X-Vigil-Signature).
    secret: Secret | None = None
    enabled: bool = True


class WebhookUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    __field_codes__: ClassVar[dict[str, str]] = FIELD_CODES

    url: Url | UnsetType = UNSET
    events: Events | UnsetType = UNSET
    # Omitted keeps the stored secret, null removes it; "***" is 400 REDACTION_SENTINEL.
    secret: Secret | UnsetType | None = UNSET
    enabled: bool | UnsetType = UNSET


class WebhookDelivery(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    event: str
    event_id: uuid.UUID
    state: str
    attempts: int
    created_at: datetime
    delivered_at: datetime | None
    last_error: str | None
