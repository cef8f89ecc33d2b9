"""The incident engine's jobs: evaluate the targets ingest marked, and the ones left behind.

Both are idempotent: evaluation is watermarked and locked per target (``engine.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import structlog
from psycopg import AsyncConnection
from redis.asyncio import Redis

from control_plane.core.queue import job_resources
from control_plane.core.state import Resources
from control_plane.db.sql import Queries
from control_plane.domain.events.stream import publish_many

from .engine import Outcome, evaluate_batch
from .slots import EvaluationSlots

log = structlog.get_logger("vigil.incidents")
Q = Queries.beside(__file__, "engine")

SWEEP_BATCH = 2000
# Marks older than this are evaluated by the sweep (a lost job, or a result that came in while
# the target's evaluation was running).
STALE_MARK_SECS = 2


# The worker's ``EvaluationSlots`` in the jobs' ctx (``slots.py``); a ctx without one (a test
# driving the job) evaluates at once.
SLOTS = "evaluation_slots"


async def evaluate_targets(
    ctx: dict[str, Any], target_ids: list[str], *, inflow: bool = True
) -> int:
    """Evaluate each target once, a chunk of targets per transaction; returns how many incidents
    opened or closed. Within the worker's evaluation slots (``slots.py``): when they are all
    taken, the targets wait and are evaluated with the others waiting. ``inflow``: they count
    toward a surge (``surge.py``; the sweep's do not)."""
    slots: EvaluationSlots | None = ctx.get(SLOTS)
    if slots is None:
        return await _evaluate(ctx, target_ids)
    return await slots.run(target_ids, lambda batch: _evaluate(ctx, batch), inflow=inflow)


async def _evaluate(ctx: dict[str, Any], target_ids: list[str]) -> int:
    changes = 0
    res = job_resources(ctx)
    async with res.db.connection() as conn:
        outcomes = await evaluate_batch(conn, [uuid.UUID(tid) for tid in target_ids])
        await _publish_changes(conn, res, outcomes.items())
    for tid, outcome in outcomes.items():
        if outcome.opened:
            log.info("incident_opened", target_id=str(tid), incident_id=str(outcome.opened))
            changes += 1
        if outcome.closed:
            log.info("incident_closed", target_id=str(tid), incident_id=str(outcome.closed))
            changes += 1
    return changes


async def _publish_changes(
    conn: AsyncConnection[Any], res: Resources, outcomes: Iterable[tuple[uuid.UUID, Outcome]]
) -> None:
    """Tell the live stream about the incidents this evaluation opened or closed and the targets
    whose current status changed (``monitor.status``), after their commit; best effort."""
    pairs = list(outcomes)
    opened = [o.opened for _, o in pairs if o.opened]
    closed = [o.closed for _, o in pairs if o.closed]
    changed = [(tid, o) for tid, o in pairs if o.status_changed and o.org_id is not None]
    if not opened and not closed and not changed:
        return
    rows = []
    if opened or closed:
        rows = await (await conn.execute(QM.changed_incidents, {"ids": opened + closed})).fetchall()
    # A client of its own: these are rare, and the job's caller may run on another event loop
    # than the one the shared client's connections belong to (tests drive jobs directly).
    fields = ("id", "target_id", "status", "state", "started_at", "ended_at", "in_maintenance")
    batch: list[tuple[uuid.UUID, str, Any]] = []
    for tid, o in changed:
        assert o.org_id is not None
        status = {
            "target_id": tid,
            "status": o.status_after,
            "previous_status": o.status_before,
            "checked_at": o.checked_at,
            "incident_id": o.opened or o.closed,
        }
        batch.append((o.org_id, "monitor.status", status))
    for row in rows:
        kind = "incident.opened" if row["id"] in opened else "incident.resolved"
        batch.append((row["org_id"], kind, {k: row[k] for k in fields}))
    async with Redis.from_url(res.settings.redis.url) as redis:
        await publish_many(redis, res.settings.redis, batch)


async def sweep_marks(ctx: dict[str, Any]) -> None:
    """Evaluate the targets whose marks have waited too long (a lost job)."""
    async with job_resources(ctx).db.connection() as conn:
        rows = await (
            await conn.execute(
                Q.stale_markers, {"older_than_secs": STALE_MARK_SECS, "limit": SWEEP_BATCH}
            )
        ).fetchall()
    if rows:
        await evaluate_targets(ctx, [str(r["target_id"]) for r in rows], inflow=False)


QM = Queries.beside(__file__, "maintenance")


async def release_maintenance(ctx: dict[str, Any]) -> int:
    """Clear ``in_maintenance`` on incidents no active maintenance window covers any more (run by
    the worker's sweep): the notifications held for them are then sent (still down) or dropped
    (recovered inside the window) by the notification side. Returns how many it released."""
    async with job_resources(ctx).db.connection() as conn:
        rows = await (await conn.execute(QM.release_maintenance)).fetchall()
    for r in rows:
        log.info(
            "incident_maintenance_released",
            incident_id=str(r["id"]),
            target_id=str(r["target_id"]),
            still_open=r["ended_at"] is None,
        )
    return len(rows)
