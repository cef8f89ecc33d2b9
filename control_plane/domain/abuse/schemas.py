"""Bodies of /operator/abuse/denylist."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

Kind = Literal["domain", "url_pattern"]


class DenyEntryCreate(msgspec.Struct, forbid_unknown_fields=True):
    # ``domain``: a domain and every name under it; ``url_pattern``: a case-insensitive POSIX
    # regular expression matched against the whole URL.
    kind: Kind
    value: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


class DenyEntry(msgspec.Struct):
    id: uuid.UUID
    kind: Kind
    value: str
    reason: str
    created_at: datetime
