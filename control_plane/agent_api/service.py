"""Lease and ingest: the control plane's half of the agent protocol (see ARCHITECTURE.md)."""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import structlog

from control_plane.auth import AgentContext
from control_plane.db.sql import Queries
from control_plane.domain.targets.codec import open_check
from control_plane.errors import ApiError
from control_plane.monitoring.jobs import enqueue_evaluation
from control_plane.monitoring.lease_ids import LeaseClaim, LeaseSigner
from control_plane.monitoring.metrics import MonitoringMetrics
from control_plane.monitoring.on_demand import complete_on_demand, fail_on_demand
from control_plane.security.sealing import SecretUnavailable
from control_plane.state import Resources
from shared.protocol import (
    MAX_INGEST_BATCH,
    MAX_LEASE_BATCH,
    MAX_WAIT_MS,
    CheckResult,
    IngestRequest,
    IngestResponse,
    Lease,
    LeaseRequest,
    LeaseResponse,
    RejectedResult,
)

Q = Queries("monitoring")
log = structlog.get_logger("vigil.agent_api")

# Seconds a lease outlives the check's own timeout (network, queueing, ingest latency).
LEASE_GRACE_SECS = 10
# Clock skew tolerated between an agent's timestamps and the lease window.
CLOCK_SKEW = timedelta(seconds=30)
# Longest sleep between two looks at the schedule while long-polling.
POLL_STEP_SECS = 0.5


@functools.cache
def _signer(token_key: bytes) -> LeaseSigner:
    """One signer per key: deriving its key is not work for every lease of the hot path."""
    return LeaseSigner(token_key)


def validate_lease_request(req: LeaseRequest) -> None:
    if not 1 <= req.max <= MAX_LEASE_BATCH:
        raise ApiError(400, "VALIDATION_ERROR", f"max must be 1..{MAX_LEASE_BATCH}", "/max")
    if not 0 <= req.wait_ms <= MAX_WAIT_MS:
        raise ApiError(400, "VALIDATION_ERROR", f"wait_ms must be 0..{MAX_WAIT_MS}", "/wait_ms")


@dataclass(slots=True)
class AgentProtocol:
    res: Resources
    agent: AgentContext
    metrics: MonitoringMetrics | None = None

    @property
    def signer(self) -> LeaseSigner:
        return _signer(self.res.settings.security.token_key)

    @property
    def allow_private(self) -> bool:
        """Whether this agent's checks may reach private addresses (the SSRF guard is off): the
        deployment allows private targets, or the agent's region does."""
        return self.res.settings.security.allow_private_targets or self.agent.region_allows_private

    async def lease(self, req: LeaseRequest) -> LeaseResponse:
        validate_lease_request(req)
        deadline = time.monotonic() + req.wait_ms / 1000
        while True:
            leases, server_time, next_at = await self._lease_once(req.max)
            remaining = deadline - time.monotonic()
            if leases or remaining <= 0:
                if self.metrics and leases:
                    self.metrics.leases.labels(region=self.agent.region_id).inc(len(leases))
                return LeaseResponse(leases=leases, server_time=server_time)
            step = POLL_STEP_SECS
            if next_at is not None:
                step = min(step, max(0.01, (next_at - server_time).total_seconds()))
            if self.res.wakeups is not None:  # an on-demand job cuts the wait short
                await self.res.wakeups.sleep(self.agent.region_id, min(step, remaining))
            else:
                await asyncio.sleep(min(step, remaining))

    async def _lease_once(self, max_n: int) -> tuple[list[Lease], datetime, datetime | None]:
        params = {
            "region_id": self.agent.region_id,
            "agent_id": self.agent.agent_id,
            "max": max_n,
            "grace_secs": LEASE_GRACE_SECS,
        }
        async with self.res.db.connection() as conn:
            # On-demand jobs first: a caller is waiting on each of them.
            rows = await (await conn.execute(Q.lease_on_demand, params)).fetchall()
            if len(rows) < max_n:
                params["max"] = max_n - len(rows)
                rows += await (await conn.execute(Q.lease_due, params)).fetchall()
            leases: list[Lease] = []
            for row in rows:
                lease = await self._to_lease(conn, row)
                if lease is not None:
                    leases.append(lease)
            if rows:
                return leases, rows[0]["server_time"], None
            nxt = await (await conn.execute(Q.next_due_in_region, params)).fetchone()
        now = nxt["now"] if nxt else datetime.now(UTC)
        return leases, now, nxt["next_at"] if nxt else None

    async def _to_lease(self, conn: Any, row: dict[str, Any]) -> Lease | None:
        try:
            spec = open_check(
                self.res.sealer, row["org_id"], row["target_id"], row["spec"], row["secrets"]
            )
        except SecretUnavailable as exc:
            # Fail closed: never hand an agent a spec without its credentials.
            log.warning("secret_unavailable", target_id=str(row["target_id"]), error=str(exc))
            if row.get("job_id") is not None:
                await fail_on_demand(conn, row)
                return None
            await conn.execute(
                Q.record_unavailable,
                {
                    "target_id": row["target_id"],
                    "region_id": row["region_id"],
                    "scheduled_at": row["scheduled_at"],
                    "org_id": row["org_id"],
                    "interval_secs": row["interval_secs"],
                    "error": "a credential of this check cannot be decrypted with the keys "
                    "configured",
                    "error_code": "SECRET_UNAVAILABLE",
                },
            )
            return None
        claim = LeaseClaim(
            target_id=row["target_id"],
            agent_id=self.agent.agent_id,
            region_id=row["region_id"],
            scheduled_at=row["scheduled_at"],
            expires_at=row["expires_at"],
            job_id=row.get("job_id"),
        )
        return Lease(
            lease_id=self.signer.issue(claim),
            target_id=str(row["target_id"]),
            region=row["region_id"],
            scheduled_at=row["scheduled_at"],
            expires_at=row["expires_at"],
            interval_secs=row["interval_secs"],
            check=spec,
            org_id=str(row["org_id"]),
            allow_private=self.allow_private,
        )

    async def ingest(self, req: IngestRequest) -> IngestResponse:
        if len(req.results) > MAX_INGEST_BATCH:
            raise ApiError(
                413,
                "BATCH_TOO_LARGE",
                f"at most {MAX_INGEST_BATCH} results per batch, got {len(req.results)}",
                "/results",
            )
        rejected: list[RejectedResult] = []
        accepted_rows: list[_Row] = []
        on_demand: list[tuple[int, uuid.UUID, CheckResult]] = []
        seen: set[tuple[uuid.UUID, datetime]] = set()
        duplicates = 0
        signer = self.signer
        for idx, result in enumerate(req.results):
            claim = signer.verify(result.lease_id)
            problem = _check_row(claim, result, self.agent)
            if problem:
                rejected.append(RejectedResult(index=idx, code=problem[0], message=problem[1]))
                continue
            assert claim is not None  # _check_row refuses a missing claim
            if claim.job_id is not None:
                on_demand.append((idx, claim.job_id, result))
                continue
            # The claim's target and slot: the same as the row's (checked above), already parsed.
            key = (claim.target_id, claim.scheduled_at)
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            accepted_rows.append(_row(idx, claim, result))
        stored = 0
        stored_idx_all: set[int] = set()
        if accepted_rows:
            params = {
                "rows": _ROWS.encode(accepted_rows).decode(),
                "region_id": self.agent.region_id,
                "agent_id": self.agent.agent_id,
            }
            async with self.res.db.connection() as conn:
                # Prepared from its first use on each connection (psycopg waits for 5): planning
                # this statement costs about 2 ms, and every batch runs it.
                cur = await conn.execute(Q.ingest_results, params, binary=True, prepare=True)
                row = await cur.fetchone()
            assert row is not None
            valid, stored_idx = set(row["valid_idx"]), set(row["stored_idx"])
            for accepted in accepted_rows:
                idx = accepted.idx
                if idx not in valid:
                    rejected.append(
                        RejectedResult(
                            index=idx,
                            code="TARGET_NOT_IN_REGION",
                            message=f"target is not probed from region {self.agent.region_id}",
                        )
                    )
                elif idx not in stored_idx:
                    duplicates += 1
            stored = len(stored_idx)
            stored_idx_all = stored_idx
            if row["marked"]:
                await enqueue_evaluation(self.res, row["marked"])
        if on_demand:
            done = await complete_on_demand(self.res, self.agent, on_demand)
            for idx, _job, _result in on_demand:
                if idx in done:
                    stored_idx_all.add(idx)
                else:
                    duplicates += 1
            stored += len(done)
        rejected.sort(key=lambda r: r.index)
        if self.metrics:
            self._count(req.results, stored_idx_all, duplicates, rejected)
        if rejected:
            log.info("ingest_rejected", count=len(rejected), first=rejected[0].code)
        return IngestResponse(accepted=stored, duplicates=duplicates, rejected=rejected)

    def _count(
        self,
        results: list[CheckResult],
        stored: set[int],
        duplicates: int,
        rejected: list[RejectedResult],
    ) -> None:
        assert self.metrics is not None
        region = self.agent.region_id
        by_status: dict[str, int] = {}
        for idx in stored:
            by_status[results[idx].status] = by_status.get(results[idx].status, 0) + 1
        for status, n in by_status.items():
            self.metrics.results.labels(region=region, status=status).inc(n)
        if duplicates:
            self.metrics.duplicates.labels(region=region).inc(duplicates)
        for r in rejected:
            self.metrics.rejected.labels(region=region, code=r.code).inc()


def _check_row(
    claim: LeaseClaim | None, result: CheckResult, agent: AgentContext
) -> tuple[str, str] | None:
    """Why a row cannot be accepted under its lease, or None when it can."""
    if claim is None or claim.agent_id != agent.agent_id or claim.region_id != agent.region_id:
        return "UNKNOWN_LEASE", "lease_id was not issued to this agent"
    try:
        target_matches = uuid.UUID(result.target_id) == claim.target_id
    except ValueError:
        target_matches = False
    if not target_matches or _aware(result.scheduled_at) != claim.scheduled_at:
        return "LEASE_MISMATCH", "target_id/scheduled_at differ from the leased slot"
    started, finished = _aware(result.started_at), _aware(result.finished_at)
    if finished < started:
        return "OUTSIDE_LEASE_WINDOW", "finished_at is before started_at"
    if started < claim.scheduled_at - CLOCK_SKEW or finished > claim.expires_at + CLOCK_SKEW:
        return (
            "OUTSIDE_LEASE_WINDOW",
            f"the check must run between {claim.scheduled_at.isoformat()} and "
            f"{claim.expires_at.isoformat()}",
        )
    return None


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


class _Row(msgspec.Struct):
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


_ROWS = msgspec.json.Encoder()


def _row(idx: int, claim: LeaseClaim, r: CheckResult) -> _Row:
    t = r.timings
    return _Row(
        idx,
        claim.target_id,
        claim.scheduled_at,
        r.status,
        _aware(r.started_at),
        _aware(r.finished_at),
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
