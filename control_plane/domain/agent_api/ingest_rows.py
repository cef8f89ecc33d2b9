"""Ingest, row by row: whether a result may be stored under its lease, and the shape in which
accepted rows travel to ``ingest_results`` (one JSON array, decoded in the statement)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from control_plane.core.auth import AgentContext
from control_plane.core.timerange import aware
from shared.protocol import (
    MAX_DETAILS_BYTES,
    MAX_ERROR_CODE_LEN,
    MAX_RESULT_MS,
    MAX_STATUS_CODE,
    MIN_STATUS_CODE,
    CheckResult,
)

from .lease_ids import LeaseClaim
from .windows import CLOCK_SKEW

INVALID_RESULT = "INVALID_RESULT"
_DETAILS = msgspec.json.Encoder()


def _bad_ms(value: float | None) -> bool:
    return value is not None and not (0.0 <= value <= MAX_RESULT_MS)  # NaN compares False


def check_values(result: CheckResult, *, measure_details: bool = True) -> tuple[str, str] | None:
    """Why a row's values cannot be stored (see the limits in ``shared.protocol``), or None.

    A handful of comparisons per row; ``details`` is measured (encoded once, in C) only when
    ``measure_details``: the caller passes False when the whole request body is smaller than the
    limit, which no single row's details can then exceed.
    """
    code = result.status_code
    if code is not None and not MIN_STATUS_CODE <= code <= MAX_STATUS_CODE:
        return INVALID_RESULT, (
            f"status_code {code} is not an HTTP status ({MIN_STATUS_CODE}-{MAX_STATUS_CODE})"
        )
    if _bad_ms(result.latency_ms):
        return INVALID_RESULT, f"latency_ms must be between 0 and {MAX_RESULT_MS:.0f}"
    t = result.timings
    for name, value in (
        ("dns_ms", t.dns_ms),
        ("connect_ms", t.connect_ms),
        ("tls_ms", t.tls_ms),
        ("ttfb_ms", t.ttfb_ms),
        ("total_ms", t.total_ms),
    ):
        if _bad_ms(value):
            return INVALID_RESULT, f"timings.{name} must be between 0 and {MAX_RESULT_MS:.0f}"
    if result.error_code is not None and len(result.error_code) > MAX_ERROR_CODE_LEN:
        return INVALID_RESULT, f"error_code is longer than {MAX_ERROR_CODE_LEN} characters"
    if measure_details and result.details:
        size = len(_DETAILS.encode(result.details))
        if size > MAX_DETAILS_BYTES:
            return INVALID_RESULT, (
                f"details is {size} bytes as JSON; at most {MAX_DETAILS_BYTES} are stored"
            )
    return None


def check_row(
    claim: LeaseClaim | None,
    result: CheckResult,
    agent: AgentContext,
    *,
    measure_details: bool = True,
) -> tuple[str, str] | None:
    """Why a row cannot be accepted under its lease, or with its values, or None when it can."""
    if claim is None or claim.agent_id != agent.agent_id or claim.region_id != agent.region_id:
        return "UNKNOWN_LEASE", "lease_id was not issued to this agent"
    try:
        target_matches = uuid.UUID(result.target_id) == claim.target_id
    except ValueError:
        target_matches = False
    if not target_matches or aware(result.scheduled_at) != claim.scheduled_at:
        return "LEASE_MISMATCH", "target_id/scheduled_at differ from the leased slot"
    started, finished = aware(result.started_at), aware(result.finished_at)
    if finished < started:
        return "OUTSIDE_LEASE_WINDOW", "finished_at is before started_at"
    if started < claim.scheduled_at - CLOCK_SKEW or finished > claim.expires_at + CLOCK_SKEW:
        return (
            "OUTSIDE_LEASE_WINDOW",
            f"the check must run between {claim.scheduled_at.isoformat()} and "
            f"{claim.expires_at.isoformat()}",
        )
    return check_values(result, measure_details=measure_details)


class Row(msgspec.Struct):
    """One accepted result as ``ingest_results`` reads it (an object of its JSON array)."""

    idx: int
    target_id: uuid.UUID
    scheduled_at: datetime
    status: str
    started_at: datetime
    finished_at: datetime
    latency_ms: float | None
    status_code: int | None
    error: str | None
    error_code: str | None
    dns_ms: float | None
    connect_ms: float | None
    tls_ms: float | None
    ttfb_ms: float | None
    details: dict[str, Any] | None


ROWS = msgspec.json.Encoder()


def to_row(idx: int, claim: LeaseClaim, r: CheckResult) -> Row:
    t = r.timings
    return Row(
        idx,
        claim.target_id,
        claim.scheduled_at,
        r.status,
        aware(r.started_at),
        aware(r.finished_at),
        r.latency_ms,
        r.status_code,
        r.error[:2000] if r.error else r.error,
        r.error_code,
        t.dns_ms,
        t.connect_ms,
        t.tls_ms,
        t.ttfb_ms,
        r.details or None,
    )
