"""The ``from``/``to`` pair of range reads: default the last 24 h, ``to`` after ``from``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from control_plane.errors import ApiError

DEFAULT_SPAN = timedelta(hours=24)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def time_range(
    from_: datetime | None, to: datetime | None, span: timedelta = DEFAULT_SPAN
) -> tuple[datetime, datetime]:
    end = _aware(to) if to else datetime.now(UTC)
    start = _aware(from_) if from_ else end - span
    if end <= start:
        raise ApiError(
            400,
            "BAD_TIME_RANGE",
            f"'to' ({end.isoformat()}) must be strictly after 'from' ({start.isoformat()})",
            "/to",
        )
    return start, end
