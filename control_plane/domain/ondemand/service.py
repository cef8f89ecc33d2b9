"""On-demand checks, the tenant side: validate, queue one job per region, wait for the agents.

Jobs travel the ordinary agent channel (ARCHITECTURE.md, agent protocol item 6): the lease hands
pending jobs of the agent's region out before any due slot, and ingest completes them (see
``agent_side.py``). This side only writes the job rows and polls them until they are done or the
check's timeout plus a slack has passed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import msgspec
from psycopg.types.json import Jsonb

from control_plane.core import abuse
from control_plane.core.auth import OrgContext
from control_plane.core.errors import ApiError
from control_plane.core.ids import new_id
from control_plane.core.service import TenantService
from control_plane.db.sql import Queries
from control_plane.domain.heartbeats.service import HEARTBEAT
from control_plane.domain.regions.service import (
    Access,
    private_allowed,
    region_access,
    require_usable,
)
from control_plane.domain.results.schemas import CheckResultOut, result_from_row
from control_plane.domain.targets import validation as v
from control_plane.domain.targets.codec import seal_check
from control_plane.domain.targets.service import target_not_found
from shared.checks import CheckSpec, HeartbeatCheck, HttpCheck
from shared.protocol import MAX_WAIT_MS, CheckResult

from .schemas import CheckNowResponse, TestRequest, TestResponse

Q = Queries.beside(__file__)

# An agent "serves" its region when it called in this recently. Every agent call stamps
# last_seen_at, and an idle agent long-polls for at most MAX_WAIT_MS (30 s) between calls.
AGENT_LIVE_SECS = MAX_WAIT_MS / 1000 + 15
# Waiting for a job, on top of the check's own timeout: the agent's long-poll noticing the job
# (woken at once by NOTIFY, else within its 0.5 s poll step; an agent busy with a full set of
# checks leases again only when one finishes), its result batch (1 s by default), the ingest.
WAIT_SLACK_SECS = 5.0
POLL_STEP_SECS = 0.05


def _heartbeat_refused() -> ApiError:
    return ApiError(
        422,
        "HEARTBEAT_HAS_NO_REGIONS",
        "a heartbeat target is not probed from regions: the job pings it",
        "/check",
    )


def warnings_for(spec: CheckSpec, interval: int | None, org: OrgContext) -> list[str]:
    """What would not stop the test but is worth knowing before creating the target."""
    out: list[str] = []
    if isinstance(spec, HttpCheck) and not spec.verify_tls:
        out.append("verify_tls is false: certificate problems will not be reported")
    if interval is not None:
        try:
            v.interval(interval, spec, org.min_interval_secs)
        except ApiError as err:
            out.append(f"{err.code}: {err}")
    return out


def matched_expectations(result: CheckResultOut) -> bool:
    """Up, and every assertion the agent reports passed (an agent turns a failed assertion into
    ``down`` / ASSERTION_FAILED; this does not rely on it alone)."""
    reported = result.details.get("assertions") if result.details else None
    entries = reported if isinstance(reported, list) else []
    return result.status == "up" and all(
        isinstance(e, dict) and e.get("passed") is True for e in entries
    )


def result_out(raw: Any, target_id: uuid.UUID, region: str, scheduled: Any) -> CheckResultOut:
    """An agent's result as reads show a stored one."""
    r = msgspec.convert(raw, CheckResult)
    t = r.timings
    row = (region, scheduled, r.started_at, r.finished_at, r.status, r.latency_ms,
           r.status_code, r.error, r.error_code, t.dns_ms, t.connect_ms, t.tls_ms, t.ttfb_ms,
           r.details)  # fmt: skip
    return result_from_row(target_id, row)


class OnDemandService(TenantService):
    """Holds a pooled connection only for short spells: a check may take a minute to come back."""

    async def test(self, body: TestRequest) -> TestResponse:
        """Run ``body.check`` once on an agent of ``body.region``; nothing is kept."""
        spec = body.check
        v.check(spec)
        if isinstance(spec, HeartbeatCheck):
            raise _heartbeat_refused()
        warnings = warnings_for(spec, body.interval, self.org)
        job_id = new_id()
        public, sealed = seal_check(self.res.sealer, self.org.org_id, job_id, spec)
        async with self.res.db.connection() as conn:
            await abuse.check_target(conn, spec)  # the operator's deny-list (issue 15)
            regions = [body.region]
            access = await self._access(conn, regions)
            require_usable(access, regions, "/region")
            if not private_allowed(access, regions):
                v.ssrf(spec)
            await self._require_agents(conn, regions)
            await conn.execute(Q.sweep_jobs)
            await self._insert(conn, job_id, None, body.region, spec.timeout, public, sealed)
        try:
            (row,) = await self._wait([job_id], spec.timeout)
        finally:
            async with self.res.db.connection() as conn:
                await conn.execute(Q.delete_jobs, {"ids": [job_id]})
        result = result_out(row["result"], job_id, body.region, row["scheduled_at"])
        return TestResponse(
            result=result, matched_expectations=matched_expectations(result), warnings=warnings
        )

    async def check_now(self, target_id: uuid.UUID) -> CheckNowResponse:
        """Run the target's stored check once on an agent of each of its regions; results are
        stored like any other."""
        async with self.res.db.connection() as conn:
            target = await (
                await conn.execute(
                    Q.target_for_check_now, {"target_id": target_id, "org_id": self.org.org_id}
                )
            ).fetchone()
            if target is None:
                raise target_not_found()
            if target["kind"] == HEARTBEAT:
                raise _heartbeat_refused()
            regions: list[str] = list(target["regions"])
            if not regions:
                raise ApiError(503, "PROBE_UNAVAILABLE", "the target is not probed from any region")
            # Bindings to a region the org lost are dropped with the grant; never run one anyway.
            require_usable(await self._access(conn, regions), regions, "/regions/{i}")
            await self._require_agents(conn, regions)
            timeout = int(target["spec"].get("timeout") or 10_000)
            await conn.execute(Q.sweep_jobs)
            ids = [new_id() for _ in regions]
            for job_id, region in zip(ids, regions, strict=True):
                await self._insert(conn, job_id, target_id, region, timeout, None, {})
        rows = await self._wait(ids, timeout)
        return CheckNowResponse(
            results=sorted(
                (
                    result_out(r["result"], target_id, r["region_id"], r["scheduled_at"])
                    for r in rows
                ),
                key=lambda r: r.region,
            )
        )

    async def _access(self, conn: Any, regions: list[str]) -> dict[str, Access]:
        allow_all = self.settings.security.allow_private_targets
        return await region_access(conn, self.org.org_id, regions, allow_all)

    async def _require_agents(self, conn: Any, regions: list[str]) -> None:
        rows = await (
            await conn.execute(Q.live_regions, {"regions": regions, "live_secs": AGENT_LIVE_SECS})
        ).fetchall()
        missing = sorted(set(regions) - {r["region_id"] for r in rows})
        if missing:
            raise ApiError(
                503,
                "PROBE_UNAVAILABLE",
                f"no agent is currently serving region(s) {', '.join(missing)}",
                details={"regions": missing},
            )

    async def _insert(
        self,
        conn: Any,
        job_id: uuid.UUID,
        target_id: uuid.UUID | None,
        region: str,
        timeout_ms: int,
        public: dict[str, Any] | None,
        sealed: dict[str, str],
    ) -> None:
        await conn.execute(
            Q.insert_job,
            {
                "id": job_id,
                "org_id": self.org.org_id,
                "target_id": target_id,
                "region_id": region,
                "spec": Jsonb(public) if public is not None else None,
                "secrets": Jsonb(sealed),
                "timeout_ms": timeout_ms,
                "wait_secs": timeout_ms / 1000 + WAIT_SLACK_SECS,
            },
        )
        await conn.execute(Q.wake_region, {"region_id": region})

    async def _wait(self, ids: list[uuid.UUID], timeout_ms: int) -> list[dict[str, Any]]:
        """The job rows once all are done; 504 PROBE_TIMEOUT when they are not in time."""
        deadline = time.monotonic() + timeout_ms / 1000 + WAIT_SLACK_SECS
        while True:
            async with self.res.db.connection() as conn:
                rows = await (await conn.execute(Q.job_states, {"ids": ids})).fetchall()
            pending = sorted(r["region_id"] for r in rows if r["state"] != "done")
            if not pending and len(rows) == len(ids):
                return rows
            if len(rows) < len(ids):  # the target was deleted meanwhile
                raise target_not_found()
            if time.monotonic() >= deadline:
                raise ApiError(
                    504,
                    "PROBE_TIMEOUT",
                    f"no agent returned a result in time for region(s) {', '.join(pending)}",
                    details={"regions": pending},
                )
            await asyncio.sleep(POLL_STEP_SECS)
