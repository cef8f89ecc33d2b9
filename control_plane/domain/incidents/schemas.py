"""What incident reads return."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec


class Incident(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    target_id: uuid.UUID
    started_at: datetime
    # null while the incident is ongoing (and then duration_secs is null too).
    ended_at: datetime | None
    status: str
    duration_secs: int | None
    # Bad results seen while it was open.
    check_count: int
    # One failure message from a region that saw it.
    error_sample: str | None
    # The regions that saw the target failing.
    regions: list[str]
