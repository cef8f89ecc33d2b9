"""What tls_cert and domain_expiry share: days left until a date, and what that means.

Status mapping (the primary reference): expired or fewer than ``critical_days`` left is down,
fewer than ``warn_days`` left is degraded, otherwise up.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Literal

ExpiryStatus = Literal["up", "degraded", "down"]


def days_remaining(expires_at: datetime, now: datetime) -> int:
    """Whole days left, rounded down: 12 hours left is 0, 12 hours past is -1."""
    return math.floor((expires_at - now).total_seconds() / 86400)


def expiry_status(days: int, warn_days: int, critical_days: int) -> ExpiryStatus:
    if days < 0 or days < critical_days:
        return "down"
    if days < warn_days:
        return "degraded"
    return "up"


def iso_utc(moment: datetime) -> str:
    """``2030-01-01T00:00:00Z``: the form dates take in results."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
