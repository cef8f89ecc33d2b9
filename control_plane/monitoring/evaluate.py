"""The incident engine: fold new results into per-region counters, then open or close incidents.

Called by the worker for targets whose results were just ingested (and by a sweep for any left
behind). Safe to run concurrently and repeatedly: a transaction-scoped advisory lock keeps one
evaluation per target in flight, per-region watermarks make re-evaluation a no-op, and incidents
open and close through conditional statements.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from control_plane.db.sql import Queries
from control_plane.ids import new_id
from control_plane.monitoring.policy import (
    BAD,
    CONCLUSIVE,
    RegionCounters,
    apply_result,
    counted_status,
    policy_met,
)

Q = Queries("evaluation")
BATCH = 5000
# A region "reports" while its last conclusive result is this recent (in intervals, at least).
REPORTING_INTERVALS = 3
REPORTING_FLOOR = timedelta(seconds=60)


@dataclass(slots=True)
class RegionRow:
    region_id: str
    counters: RegionCounters = field(default_factory=RegionCounters)
    evaluated_to: datetime | None = None
    last_reported_at: datetime | None = None
    last_status: str | None = None
    last_error: str | None = None
    bad_seen: int = 0
    changed: bool = False


@dataclass(slots=True)
class Outcome:
    evaluated: bool
    results: int = 0
    opened: uuid.UUID | None = None
    closed: uuid.UUID | None = None


def _region_from_row(row: dict[str, Any]) -> RegionRow:
    return RegionRow(
        region_id=row["region_id"],
        counters=RegionCounters(
            row["consecutive_bad"], row["consecutive_good"], row["failing"], row["failing_since"]
        ),
        evaluated_to=row["evaluated_to"],
        last_reported_at=row["last_reported_at"],
        last_status=row["last_status"],
        last_error=row["last_error"],
    )


async def evaluate_target(conn: AsyncConnection[Any], target_id: uuid.UUID) -> Outcome:
    async with conn.transaction():
        # Evaluation state is derived from stored results: if a crash loses this commit, the
        # mark that is cleared in the same transaction comes back and the target is evaluated
        # again. So the commit need not wait for the WAL flush.
        await conn.execute("SET LOCAL synchronous_commit = off")
        cur = await conn.execute(Q.lock_target, {"target_id": target_id})
        lock = await cur.fetchone()
        if not lock or not lock["locked"]:
            return Outcome(evaluated=False)
        marker = await (await conn.execute(Q.dirty_marker, {"target_id": target_id})).fetchone()
        target = await (
            await conn.execute(Q.target_for_evaluation, {"target_id": target_id})
        ).fetchone()
        if target is None:
            return Outcome(evaluated=True)
        outcome = await _evaluate(conn, target)
        if marker is not None:
            await conn.execute(
                Q.clear_marker, {"target_id": target_id, "dirty_at": marker["dirty_at"]}
            )
        return outcome


async def _evaluate(conn: AsyncConnection[Any], target: dict[str, Any]) -> Outcome:
    target_id = target["id"]
    confirmations: int = target["alert_confirmations"]
    regions: dict[str, RegionRow] = {
        row["region_id"]: _region_from_row(row)
        for row in await (await conn.execute(Q.region_states, {"target_id": target_id})).fetchall()
    }
    rows = await (
        await conn.execute(Q.new_results, {"target_id": target_id, "limit": BATCH})
    ).fetchall()
    for r in rows:
        region = regions.setdefault(r["region_id"], RegionRow(r["region_id"]))
        status = counted_status(r["status"], r["error_code"])
        region.counters = apply_result(region.counters, status, confirmations, r["scheduled_at"])
        region.evaluated_to = r["scheduled_at"]
        region.changed = True
        if status in CONCLUSIVE:
            region.last_reported_at = r["scheduled_at"]
            region.last_status = status
            if status in BAD:
                region.last_error = r["error"]
                region.bad_seen += 1
    for region in regions.values():
        if region.changed:
            await conn.execute(
                Q.save_region_state,
                {
                    "target_id": target_id,
                    "region_id": region.region_id,
                    "consecutive_bad": region.counters.consecutive_bad,
                    "consecutive_good": region.counters.consecutive_good,
                    "failing": region.counters.failing,
                    "failing_since": region.counters.failing_since,
                    "evaluated_to": region.evaluated_to,
                    "last_reported_at": region.last_reported_at,
                    "last_status": region.last_status,
                    "last_error": region.last_error,
                },
            )
    outcome = Outcome(evaluated=True, results=len(rows))
    await _decide(conn, target, regions, outcome)
    return outcome


def _reporting(target: dict[str, Any], regions: dict[str, RegionRow]) -> list[RegionRow]:
    """Assigned regions with a recent conclusive result, judged against the newest one seen."""
    assigned = set(target["regions"])
    seen = [r for r in regions.values() if r.region_id in assigned and r.last_reported_at]
    if not seen:
        return []
    newest = max(r.last_reported_at for r in seen if r.last_reported_at)
    window = max(REPORTING_FLOOR, timedelta(seconds=target["interval_secs"] * REPORTING_INTERVALS))
    return [r for r in seen if r.last_reported_at and r.last_reported_at >= newest - window]


async def _decide(
    conn: AsyncConnection[Any],
    target: dict[str, Any],
    regions: dict[str, RegionRow],
    outcome: Outcome,
) -> None:
    target_id = target["id"]
    reporting = _reporting(target, regions)
    failing = [r for r in reporting if r.counters.failing]
    should_be_open = policy_met(target["region_policy"], len(failing), len(reporting))
    current = await (await conn.execute(Q.open_incident_of, {"target_id": target_id})).fetchone()
    failing_ids = sorted(r.region_id for r in failing)
    cause = next((r.last_error for r in failing if r.last_error), None)
    if should_be_open and current is None:
        started = min(
            (r.counters.failing_since for r in failing if r.counters.failing_since),
            default=None,
        )
        row = await (
            await conn.execute(
                Q.open_incident,
                {
                    "id": new_id(),
                    "org_id": target["org_id"],
                    "target_id": target_id,
                    "started_at": started,
                    "cause": cause,
                    "regions": failing_ids,
                    "check_count": sum(r.counters.consecutive_bad for r in failing),
                },
            )
        ).fetchone()
        outcome.opened = row["id"] if row else None
    elif should_be_open and current is not None:
        await conn.execute(
            Q.extend_incident,
            {
                "id": current["id"],
                "regions": failing_ids,
                "bad": sum(r.bad_seen for r in regions.values()),
                "cause": cause,
            },
        )
    elif not should_be_open and current is not None:
        ended = max((r.evaluated_to for r in regions.values() if r.evaluated_to), default=None)
        row = await (
            await conn.execute(Q.close_incident, {"id": current["id"], "ended_at": ended})
        ).fetchone()
        outcome.closed = row["id"] if row else None
