"""The agent protocol: what ``/api/agent/lease`` hands out and ``/api/agent/ingest`` takes back.

A *slot* is (target, region, scheduled_at). The control plane leases due slots of the agent's
region (the region comes from the agent token, never from a body); the agent runs each check and
returns one ``CheckResult`` per lease. A result is unique on its slot: re-sending it is harmless.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from shared.checks import CheckSpec

# ``missed`` is only ever written by the control plane (a slot nobody ran in time).
Status = Literal["up", "down", "degraded", "error", "missed"]
AgentStatus = Literal["up", "down", "degraded", "error"]

MAX_LEASE_BATCH = 500
MAX_WAIT_MS = 30_000
MAX_INGEST_BATCH = 1_000

# What one result may carry. Ingest refuses a row outside these (``INVALID_RESULT``, naming the
# field) and stores the rest of its batch: one broken row must not hold back a batch, nor make an
# agent re-send it forever.
MIN_STATUS_CODE = 100
"""Lowest ``status_code``: HTTP statuses are three digits (RFC 9110 15), 100 to 999."""
MAX_STATUS_CODE = 999
"""Highest ``status_code`` (stored as a smallint, which a 40000 would overflow)."""
MAX_RESULT_MS = 86_400_000.0
"""Longest ``latency_ms`` or phase timing: one day in milliseconds. A check's own timeout is at
most a minute; anything past a day is a broken clock, and stored as a 4-byte real a 1e300 would
overflow. Times are finite and never negative."""
MAX_ERROR_CODE_LEN = 64
"""Longest ``error_code``: codes are short UPPER_SNAKE names (``shared.codes``)."""
MAX_DETAILS_BYTES = 64 * 1024
"""Largest ``details``, measured as compact JSON: 64 KiB. The agent's own details (assertion
excerpts, certificate facts, RDAP fields) stay under a few KiB; a result is not a place for a
response body."""


class LeaseRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # How many slots the agent can take now (its free concurrency).
    max: int = 50
    # Long-poll: wait up to this long for a slot to fall due when none is due now.
    wait_ms: int = 0


class Lease(msgspec.Struct, kw_only=True):
    lease_id: str
    target_id: str
    region: str
    scheduled_at: datetime
    # Server clock; a result for this lease is accepted until then (plus a short grace).
    expires_at: datetime
    interval_secs: int
    # The full spec, credentials decrypted: only agents ever see this.
    check: CheckSpec
    # Org id, for per-(org, host) throttling in the agent.
    org_id: str = ""
    # The SSRF guard is off for this check: the deployment allows private targets, or the
    # lease's region does (an operator setting). False, the secure default, when absent.
    allow_private: bool = False


class LeaseResponse(msgspec.Struct, kw_only=True):
    leases: list[Lease]
    server_time: datetime


class Timings(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Per-phase durations in milliseconds; a phase the check did not go through stays None."""

    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    ttfb_ms: float | None = None
    total_ms: float | None = None


class CheckResult(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    lease_id: str
    target_id: str
    scheduled_at: datetime
    started_at: datetime
    finished_at: datetime
    status: AgentStatus
    # Total time of the check in milliseconds (None when it never ran).
    latency_ms: float | None = None
    status_code: int | None = None
    # Human-readable failure, e.g. "expected status 200, got 503" or "rate-limited 429 (…)".
    error: str | None = None
    # Stable machine code for ``error`` (e.g. TIMEOUT, CONNECTION_REFUSED, SSRF_BLOCKED).
    error_code: str | None = None
    timings: Timings = msgspec.field(default_factory=Timings)
    # Kind-specific extras (assertions, certificate facts, …).
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class IngestRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    results: list[CheckResult]


class RejectedResult(msgspec.Struct, kw_only=True):
    index: int
    code: str
    message: str


class IngestResponse(msgspec.Struct, kw_only=True):
    accepted: int
    duplicates: int
    rejected: list[RejectedResult]


class ReleaseRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Leases an agent gives back without having started them (it is stopping): their slots
    can be leased by another agent at once instead of after the leases expire."""

    lease_ids: list[str]


class ReleaseResponse(msgspec.Struct, kw_only=True):
    # Slots and on-demand jobs made leasable again (a lease already expired, answered or
    # leased again elsewhere is not counted).
    released: int
