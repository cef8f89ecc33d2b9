"""Request and response bodies of /api/v1/targets/{id}/shares."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, ClassVar

import msgspec

FIELD_CODES: dict[str, str] = {
    "/label": "SHARE_LABEL_INVALID",
    "/expires_at": "INVALID_EXPIRY",
}


class ShareCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    __field_codes__: ClassVar[dict[str, str]] = FIELD_CODES

    # At most 80 characters.
    label: Annotated[str, msgspec.Meta(max_length=80)] | None = None
    # Omit for a link that never expires; a time in the past is refused.
    expires_at: datetime | None = None


class MonitorShare(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    target_id: uuid.UUID
    label: str | None
    # The capability itself; null only when it was sealed under a key no longer configured.
    token: str | None
    # ``{origin}/m/{token}``.
    share_url: str | None
    expires_at: datetime | None
    created_at: datetime


class ShareList(msgspec.Struct, kw_only=True):
    items: list[MonitorShare]
