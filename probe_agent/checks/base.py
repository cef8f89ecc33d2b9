"""What every check runner shares: the runner interface, the SSRF policy of a check, and how a
result is put together."""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from probe_agent.millis import to_ms
from probe_agent.netguard import Policy, SsrfBlocked
from shared.codes import PROBE_ERROR, SSRF_BLOCKED
from shared.protocol import AgentStatus, CheckResult, Lease, Timings

SpecT_contra = TypeVar("SpecT_contra", contravariant=True)


class CheckRunner(Protocol[SpecT_contra]):
    """Runs one kind of check. ``run`` never raises for a failing target: that is a result."""

    async def run(self, check: SpecT_contra, lease: Lease) -> CheckResult: ...


class GuardedRunner:
    """What the runners that connect to a tenant's target share: the SSRF policy of a check.

    ``ssrf_exempt`` names listeners, as (address, port), the guard lets through regardless (see
    ``Policy``).
    """

    def __init__(self, *, ssrf_exempt: frozenset[tuple[str, int]] = frozenset()) -> None:
        self._ssrf_exempt = ssrf_exempt
        # A policy depends only on the lease's ``allow_private`` and the runner's exemptions:
        # both are built once here rather than once per check. Every connection is still judged.
        self._policies = (
            Policy(allow_private=False, exempt=ssrf_exempt),
            Policy(allow_private=True, exempt=ssrf_exempt),
        )

    def policy(self, lease: Lease) -> Policy:
        """What this lease's check may connect to (the same as ``Policy.for_lease``)."""
        return self._policies[1 if lease.allow_private else 0]


def is_refused(err: OSError) -> bool:
    return isinstance(err, ConnectionRefusedError) or err.errno == errno.ECONNREFUSED


def utcnow() -> datetime:
    return datetime.now(UTC)


def ms_between(start: float | None, end: float | None) -> float | None:
    """Milliseconds between two ``time.perf_counter()`` readings, None if either is missing."""
    if start is None or end is None:
        return None
    return to_ms(max(0.0, end - start))


@dataclass(slots=True)
class Attempt:
    """One run of a leased check: when it started, and how to turn an outcome into a result."""

    lease: Lease
    started_at: datetime = field(default_factory=utcnow)
    started: float = field(default_factory=time.perf_counter)

    def elapsed_ms(self) -> float:
        return to_ms(time.perf_counter() - self.started)

    def finish(
        self,
        status: AgentStatus,
        *,
        timings: Timings | None = None,
        status_code: int | None = None,
        error: str | None = None,
        error_code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> CheckResult:
        """A result whose ``latency_ms`` is the total time (``timings.total_ms``)."""
        timings = timings or Timings()
        if timings.total_ms is None:
            timings.total_ms = self.elapsed_ms()
        return CheckResult(
            lease_id=self.lease.lease_id,
            target_id=self.lease.target_id,
            scheduled_at=self.lease.scheduled_at,
            started_at=self.started_at,
            finished_at=utcnow(),
            status=status,
            latency_ms=timings.total_ms,
            status_code=status_code,
            error=error,
            error_code=error_code,
            timings=timings,
            details=details or {},
        )

    def blocked(
        self,
        exc: SsrfBlocked,
        *,
        timings: Timings | None = None,
        details: dict[str, Any] | None = None,
    ) -> CheckResult:
        """The SSRF guard refused the connection: status ``error`` with ``SSRF_BLOCKED``, the
        refused address and its blocked range added to ``details``."""
        return self.finish(
            "error",
            timings=timings,
            error=str(exc),
            error_code=SSRF_BLOCKED,
            details={**(details or {}), **exc.details()},
        )

    def probe_error(self, message: str) -> CheckResult:
        """The probe could not run the check at all: status ``error``, no latency."""
        return probe_error(
            self.lease.lease_id,
            self.lease.target_id,
            self.lease.scheduled_at,
            message,
            started_at=self.started_at,
        )


def probe_error(
    lease_id: str,
    target_id: str,
    scheduled_at: datetime,
    message: str,
    *,
    started_at: datetime | None = None,
) -> CheckResult:
    """A result for a slot this agent could not check (bad spec, unknown kind, internal bug)."""
    now = utcnow()
    return CheckResult(
        lease_id=lease_id,
        target_id=target_id,
        scheduled_at=scheduled_at,
        started_at=started_at or now,
        finished_at=now,
        status="error",
        error=message,
        error_code=PROBE_ERROR,
    )
