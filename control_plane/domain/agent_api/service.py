"""Lease and ingest: the control plane's half of the agent protocol (see ARCHITECTURE.md)."""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog

from control_plane.core.auth import AgentContext, unauthorized
from control_plane.core.errors import ApiError
from control_plane.core.observability.monitoring import MonitoringMetrics
from control_plane.core.queue import enqueue_evaluation
from control_plane.core.service import Service
from control_plane.db.sql import Queries
from control_plane.domain.ondemand.agent_side import (
    complete_on_demand,
    fail_on_demand,
    lease_jobs,
    release_jobs,
)
from control_plane.domain.targets.codec import open_check
from control_plane.security.sealing import SecretUnavailable
from shared import codes
from shared.protocol import (
    MAX_DETAILS_BYTES,
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
    ReleaseRequest,
    ReleaseResponse,
)

from .ingest_rows import ROWS, Row, check_row, to_row
from .lease_ids import LeaseClaim, LeaseSigner
from .windows import LEASE_GRACE_SECS, LEASE_SHED_SECS

Q = Queries.beside(__file__)
log = structlog.get_logger("vigil.agent_api")

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


class AgentProtocol(Service):
    """The protocol as one agent speaks it: its region comes from its token (the caller)."""

    @property
    def agent(self) -> AgentContext:
        assert isinstance(self.caller, AgentContext), "the agent protocol needs the calling agent"
        return self.caller

    @property
    def metrics(self) -> MonitoringMetrics | None:
        return self.res.monitoring

    @property
    def signer(self) -> LeaseSigner:
        return _signer(self.res.settings.security.token_key)

    async def lease(self, req: LeaseRequest, gone: asyncio.Event | None = None) -> LeaseResponse:
        """Up to ``req.max`` due slots, long-polling ``req.wait_ms``. ``gone`` is set when the
        caller disconnected: nothing is leased to a closed request (checked again before the
        lease commits); a draining process answers at once with what it has (nothing)."""
        validate_lease_request(req)
        gone = gone or asyncio.Event()
        draining = self.res.draining.event
        deadline = time.monotonic() + req.wait_ms / 1000
        while True:
            if gone.is_set() or draining.is_set():
                return LeaseResponse(leases=[], server_time=datetime.now(UTC))
            leases, server_time, next_at = await self._lease_once(req.max, gone)
            remaining = deadline - time.monotonic()
            if leases or remaining <= 0:
                if self.metrics and leases:
                    self.metrics.leases.labels(region=self.agent.region_id).inc(len(leases))
                    self.metrics.observe_lateness(self.agent.region_id, leases, server_time)
                return LeaseResponse(leases=leases, server_time=server_time)
            step = POLL_STEP_SECS
            if next_at is not None:
                step = min(step, max(0.01, (next_at - server_time).total_seconds()))
            await self._wait(min(step, remaining), gone, draining)

    async def _wait(self, secs: float, *events: asyncio.Event) -> None:
        """Sleep up to ``secs``; less when an on-demand job for the region is queued, the
        caller disconnects or the process drains."""
        nap = (
            self.res.wakeups.sleep(self.agent.region_id, secs)
            if self.res.wakeups is not None
            else asyncio.sleep(secs)
        )
        waits = [asyncio.ensure_future(nap), *(asyncio.ensure_future(e.wait()) for e in events)]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _lease_once(
        self, max_n: int, gone: asyncio.Event
    ) -> tuple[list[Lease], datetime, datetime | None]:
        params = {
            "region_id": self.agent.region_id,
            "agent_id": self.agent.agent_id,
            "max": max_n,
            "grace_secs": LEASE_GRACE_SECS,
            "shed_secs": LEASE_SHED_SECS,
        }
        async with self.res.db.connection() as conn:
            async with conn.transaction() as tx:
                # On-demand jobs first: a caller is waiting on each of them.
                rows = await lease_jobs(conn, params)
                if len(rows) < max_n:
                    params["max"] = max_n - len(rows)
                    rows += await (await conn.execute(Q.lease_due, params)).fetchall()
                leases: list[Lease] = []
                for row in rows:
                    lease = await self._to_lease(conn, row)
                    if lease is not None:
                        leases.append(lease)
                if rows and gone.is_set():
                    # The agent went away while we took its slots: give them back untouched,
                    # so another agent leases them now rather than after the lease expires.
                    log.info("lease_abandoned", slots=len(rows))
                    raise psycopg.Rollback(tx)
            if rows and not gone.is_set():
                return leases, rows[0]["server_time"], None
            nxt = await (await conn.execute(Q.next_due_in_region, params)).fetchone()
        if nxt is not None and not nxt["live"]:
            # Revoked while it waited: end the long-poll now, as the next call would.
            raise unauthorized("missing or invalid agent token")
        now = nxt["now"] if nxt else datetime.now(UTC)
        return [], now, nxt["next_at"] if nxt else None

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
                    "error_code": codes.SECRET_UNAVAILABLE,
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
            # The SSRF guard is off for this check: the deployment allows private targets, or
            # the region does and the target's org is granted it there.
            allow_private=self.settings.security.allow_private_targets or row["allow_private"],
        )

    async def release(self, req: ReleaseRequest) -> ReleaseResponse:
        """Give back leases this agent has not started (it is stopping); each must be a lease
        this agent holds (signed ids that are not its own are ignored)."""
        if len(req.lease_ids) > MAX_LEASE_BATCH:
            raise ApiError(
                413, "BATCH_TOO_LARGE", f"at most {MAX_LEASE_BATCH} lease ids", "/lease_ids"
            )
        slots: list[LeaseClaim] = []
        jobs: list[uuid.UUID] = []
        for lease_id in req.lease_ids:
            claim = self.signer.verify(lease_id)
            if claim is None or claim.agent_id != self.agent.agent_id:
                continue
            if claim.region_id != self.agent.region_id:
                continue
            if claim.job_id is not None:
                jobs.append(claim.job_id)
            else:
                slots.append(claim)
        released = 0
        async with self.res.db.connection() as conn:
            if slots:
                params = {
                    "target_ids": [c.target_id for c in slots],
                    "scheduled_at": [c.scheduled_at for c in slots],
                    "region_id": self.agent.region_id,
                    "agent_id": self.agent.agent_id,
                }
                released += len(await (await conn.execute(Q.release_slots, params)).fetchall())
            released += await release_jobs(conn, jobs, self.agent.region_id, self.agent.agent_id)
        if released:
            log.info("leases_released", released=released, asked=len(req.lease_ids))
        return ReleaseResponse(released=released)

    async def ingest(self, req: IngestRequest, body_bytes: int | None = None) -> IngestResponse:
        """Store the batch's good rows; each bad one is rejected on its own with a code.
        ``body_bytes``, the size of the request body, spares measuring each row's ``details``
        when the whole body is within their limit."""
        if len(req.results) > MAX_INGEST_BATCH:
            raise ApiError(
                413,
                "BATCH_TOO_LARGE",
                f"at most {MAX_INGEST_BATCH} results per batch, got {len(req.results)}",
                "/results",
            )
        rejected: list[RejectedResult] = []
        accepted_rows: list[Row] = []
        on_demand: list[tuple[int, uuid.UUID, CheckResult]] = []
        seen: set[tuple[uuid.UUID, datetime]] = set()
        duplicates = 0
        signer = self.signer
        measure = body_bytes is None or body_bytes > MAX_DETAILS_BYTES
        for idx, result in enumerate(req.results):
            claim = signer.verify(result.lease_id)
            problem = check_row(claim, result, self.agent, measure_details=measure)
            if problem:
                rejected.append(RejectedResult(index=idx, code=problem[0], message=problem[1]))
                continue
            assert claim is not None  # check_row refuses a missing claim
            if claim.job_id is not None:
                on_demand.append((idx, claim.job_id, result))
                continue
            # The claim's target and slot: the same as the row's (checked above), already parsed.
            key = (claim.target_id, claim.scheduled_at)
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            accepted_rows.append(to_row(idx, claim, result))
        stored = 0
        stored_idx_all: set[int] = set()
        if accepted_rows:
            params = {
                "rows": ROWS.encode(accepted_rows).decode(),
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
