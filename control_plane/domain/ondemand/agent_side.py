"""The agent side of on-demand checks (check-now, one-shot tests): their results at ingest.

Their leases come out of ``lease_on_demand`` ahead of the schedule's slots and look like any
other lease to the agent; their lease ids carry the job id (see ``lease_ids``). Results are
rare next to the schedule's, so they are written one statement per result, apart from the
batched ingest of ordinary results.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
from psycopg.types.json import Jsonb

from control_plane.core.timerange import aware
from control_plane.db.sql import Queries
from shared import codes
from shared.protocol import CheckResult

if TYPE_CHECKING:
    from control_plane.core.auth import AgentContext
    from control_plane.core.state import Resources

Q = Queries.beside(__file__)


async def lease_jobs(conn: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Lease up to ``params["max"]`` pending jobs of the agent's region, oldest first, shaped
    like the schedule's slots (plus ``job_id``)."""
    rows: list[dict[str, Any]] = await (await conn.execute(Q.lease_on_demand, params)).fetchall()
    return rows


def _params(
    job_id: uuid.UUID, region_id: str, agent_id: uuid.UUID | None, r: CheckResult
) -> dict[str, Any]:
    t = r.timings
    return {
        "job_id": job_id,
        "region_id": region_id,
        "agent_id": agent_id,
        "result": Jsonb(msgspec.to_builtins(r)),
        "status": r.status,
        "started_at": aware(r.started_at),
        "finished_at": aware(r.finished_at),
        "latency_ms": r.latency_ms,
        "status_code": r.status_code,
        "error": r.error[:2000] if r.error else r.error,
        "error_code": r.error_code,
        "dns_ms": t.dns_ms,
        "connect_ms": t.connect_ms,
        "tls_ms": t.tls_ms,
        "ttfb_ms": t.ttfb_ms,
        "details": Jsonb(r.details) if r.details else None,
    }


async def complete_on_demand(
    res: Resources, agent: AgentContext, rows: list[tuple[int, uuid.UUID, CheckResult]]
) -> set[int]:
    """Store each result on its job (and, for check-now, in results); the indexes stored."""
    done: set[int] = set()
    async with res.db.connection() as conn:
        for idx, job_id, r in rows:
            params = _params(job_id, agent.region_id, agent.agent_id, r)
            row = await (await conn.execute(Q.complete_on_demand, params)).fetchone()
            if row is not None and row["done"]:
                done.add(idx)
    return done


async def fail_on_demand(conn: Any, row: dict[str, Any]) -> None:
    """A job whose credentials cannot be opened is never leased: it ends with an ``error``
    result (stored like the agent's would be, for a check-now), as a scheduled slot does."""
    now = datetime.now(UTC)
    result = CheckResult(
        lease_id="",
        target_id=str(row["target_id"]),
        scheduled_at=row["scheduled_at"],
        started_at=now,
        finished_at=now,
        status="error",
        error="a credential of this check cannot be decrypted with the keys configured",
        error_code=codes.SECRET_UNAVAILABLE,
    )
    await conn.execute(Q.complete_on_demand, _params(row["job_id"], row["region_id"], None, result))


async def release_jobs(
    conn: Any, job_ids: list[uuid.UUID], region_id: str, agent_id: uuid.UUID
) -> int:
    """Jobs the agent gives back unstarted become pending again; how many."""
    if not job_ids:
        return 0
    params = {"ids": job_ids, "region_id": region_id, "agent_id": agent_id}
    rows = await (await conn.execute(Q.release_jobs, params)).fetchall()
    return len(rows)
