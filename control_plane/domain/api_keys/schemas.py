"""Request and response bodies of /api/v1/api-keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal, get_args

import msgspec

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
# A scope (core/scopes.py): a permission, ``read_only`` or ``full_access``; a test checks
# that this list and core/scopes.py's SCOPES agree.
Scope = Literal[
    "full_access",
    "read_only",
    "targets:read",
    "targets:write",
    "incidents:read",
    "incidents:write",
    "channels:read",
    "channels:write",
    "alert_rules:read",
    "alert_rules:write",
    "maintenance:read",
    "maintenance:write",
    "webhooks:read",
    "webhooks:write",
    "status_pages:read",
    "status_pages:write",
    "members:read",
    "members:write",
    "api_keys:read",
    "api_keys:write",
    "audit:read",
    "audit:write",
    "org:read",
    "org:write",
]


class ApiKeyCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    # Scopes (core/scopes.py): permissions such as ``targets:read``, or ``read_only`` /
    # ``full_access``. Never more than the creating key holds.
    scopes: Annotated[list[Scope], msgspec.Meta(min_length=1, max_length=50)] = msgspec.field(
        default_factory=lambda: ["full_access"]
    )
    # Optional end of life (must be in the future); null: the key never expires.
    expires_at: datetime | None = None


class ApiKey(msgspec.Struct):
    """A key as lists show it: masked (its prefix and last four characters), never its hash."""

    id: uuid.UUID
    name: str
    key: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    created_by: uuid.UUID | None


class ApiKeyCreated(msgspec.Struct):
    """The new key: ``key`` is the whole secret, shown this once."""

    id: uuid.UUID
    name: str
    key: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    created_by: uuid.UUID | None


SCOPE_NAMES = frozenset(get_args(Scope))
