"""The incident engine: fold new results into per-region counters, then open or close incidents.

Called by the worker for targets whose results were just ingested (and by a sweep for any left
behind), a chunk of targets per transaction with one statement per kind of read or write,
incidents included: a mass outage opens a chunk's incidents, their outbox rows and their events
in a few statements. Safe to run concurrently and repeatedly: a transaction-scoped advisory
lock keeps one evaluation per target in flight (a target another worker holds is skipped and
keeps its mark), per-region watermarks make re-evaluation a no-op, and incidents open and close
through conditional statements.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from control_plane.core.ids import new_id
from control_plane.db.sql import Queries
from control_plane.domain.incidents.policy import (
    BAD,
    CONCLUSIVE,
    RegionCounters,
    apply_result,
    counted_status,
    needed,
    policy_met,
    quorum_end,
    quorum_start,
)
from control_plane.domain.notifications import outbox
from control_plane.domain.webhooks import events as webhook_events

Q = Queries.beside(__file__, "engine")
# New results folded per target and evaluation (the rest waits for the next one).
BATCH = 5000
# Targets per transaction: one lock statement, one read per kind, one write of region states.
CHUNK = 250
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
    # The target's current status (as target reads show it: the open incident's, else the worst
    # region's last) before and after this evaluation, for the live stream's monitor.status.
    org_id: uuid.UUID | None = None
    status_before: str | None = None
    status_after: str | None = None
    checked_at: datetime | None = None

    @property
    def status_changed(self) -> bool:
        return self.status_after is not None and self.status_after != self.status_before


# The worst region's last status, as ``target_current`` orders them.
_WORST = ("down", "error", "degraded", "up")


def _worst(regions: Iterable[RegionRow]) -> str:
    seen = {r.last_status for r in regions}
    return next((s for s in _WORST if s in seen), "unknown")


def _region_from_row(row: dict[str, Any]) -> RegionRow:
    return RegionRow(
        region_id=row["region_id"],
        counters=RegionCounters(
            row["consecutive_bad"],
            row["consecutive_good"],
            row["failing"],
            row["failing_since"],
            row["good_since"],
            row["failing_hard"],
        ),
        evaluated_to=row["evaluated_to"],
        last_reported_at=row["last_reported_at"],
        last_status=row["last_status"],
        last_error=row["last_error"],
    )


async def evaluate_target(conn: AsyncConnection[Any], target_id: uuid.UUID) -> Outcome:
    """One target: the batch path with a batch of one."""
    return (await evaluate_batch(conn, [target_id]))[target_id]


async def evaluate_batch(
    conn: AsyncConnection[Any], target_ids: Sequence[uuid.UUID], chunk: int = CHUNK
) -> dict[uuid.UUID, Outcome]:
    """Evaluate many targets, ``chunk`` of them per transaction, with set-based reads and writes.

    Each chunk takes the locks it can get in one statement; a target another worker holds comes
    back ``evaluated=False`` and keeps its mark (the sweep returns to it)."""
    ids = list(dict.fromkeys(target_ids))
    outcomes: dict[uuid.UUID, Outcome] = {}
    for start in range(0, len(ids), max(1, chunk)):
        outcomes.update(await _evaluate_chunk(conn, ids[start : start + max(1, chunk)]))
    return outcomes


async def _rows(conn: AsyncConnection[Any], query: str, params: dict[str, Any]) -> list[Any]:
    return await (await conn.execute(query, params)).fetchall()


async def _evaluate_chunk(
    conn: AsyncConnection[Any], ids: list[uuid.UUID]
) -> dict[uuid.UUID, Outcome]:
    outcomes = {tid: Outcome(evaluated=False) for tid in ids}
    async with conn.transaction():
        # Evaluation state is derived from stored results: if a crash loses this commit, the
        # marks that are cleared in the same transaction come back and the targets are evaluated
        # again. So the commit need not wait for the WAL flush.
        await conn.execute("SET LOCAL synchronous_commit = off")
        locked = [r["target_id"] for r in await _rows(conn, Q.lock_targets, {"ids": ids})]
        if not locked:
            return outcomes
        params = {"ids": locked}
        markers = {
            r["target_id"]: r["dirty_at"] for r in await _rows(conn, Q.dirty_markers, params)
        }
        targets = {r["id"]: r for r in await _rows(conn, Q.targets_for_evaluation, params)}
        states: dict[uuid.UUID, dict[str, RegionRow]] = {tid: {} for tid in targets}
        for row in await _rows(conn, Q.region_states, params):
            if row["target_id"] in states:
                states[row["target_id"]][row["region_id"]] = _region_from_row(row)
        before = {tid: _worst(regions.values()) for tid, regions in states.items()}
        results = await _new_results(conn, targets, states)
        saves: list[tuple[uuid.UUID, RegionRow]] = []
        for tid in locked:
            outcomes[tid] = Outcome(evaluated=True)
            target = targets.get(tid)
            if target is not None:
                outcomes[tid].results = _fold(target, states[tid], results.get(tid, ()))
                saves.extend((tid, region) for region in states[tid].values() if region.changed)
        changes = _Changes()
        if targets:
            current = {
                r["target_id"]: r
                for r in await _rows(conn, Q.open_incidents_of, {"ids": list(targets)})
            }
            for tid, target in targets.items():
                outcome = outcomes[tid]
                now_open = current.get(tid)
                outcome.org_id = target["org_id"]
                outcome.status_before = now_open["status"] if now_open else before[tid]
                _decide(target, states[tid], now_open, outcome, changes)
                outcome.checked_at = max(
                    (r.evaluated_to for r in states[tid].values() if r.evaluated_to), default=None
                )
        # The maintained status (target_state, 0200) of every target whose status these writes
        # can move, locked in id order before the first of them: each statement's trigger locks
        # its own targets, and a second round of locks after the first would deadlock against
        # an ingest locking the same rows in id order.
        moving = _status_moves(targets, saves, changes)
        if moving:
            await conn.execute(Q.lock_target_states, {"ids": moving})
        if saves:
            await conn.execute(Q.save_region_states, _region_arrays(saves))
        if targets:
            await _apply(conn, changes, outcomes, states)
        # Marks of evaluated targets, and of deleted ones (nothing is left to evaluate).
        cleared = [(tid, markers[tid]) for tid in locked if tid in markers]
        if cleared:
            # Planned for each chunk (never prepared): a plan prepared while the queue was
            # nearly empty keeps assuming it is, however large it grows (engine.sql).
            await conn.execute(
                Q.clear_markers,
                {"ids": [c[0] for c in cleared], "dirty_at": [c[1] for c in cleared]},
                prepare=False,
            )
    return outcomes


def _status_moves(
    targets: dict[uuid.UUID, dict[str, Any]],
    saves: list[tuple[uuid.UUID, RegionRow]],
    changes: _Changes,
) -> list[uuid.UUID]:
    """The targets whose maintained status the chunk's writes may change, in id order: those
    whose incident opens, turns ``down`` or closes, and the heartbeat targets whose region state is
    saved (a probed target's status reads its schedule rows, which ingest writes)."""
    ids = {uuid.UUID(c["target_id"]) for c in changes.opens}
    ids.update(uuid.UUID(c["target_id"]) for c in changes.extends if c["moves"])
    ids.update(c[0] for c in changes.closes)
    ids.update(
        tid
        for tid, _ in saves
        if tid in targets and list(targets[tid]["regions"] or ()) == ["heartbeat"]
    )
    return sorted(ids)


async def _new_results(
    conn: AsyncConnection[Any],
    targets: dict[uuid.UUID, dict[str, Any]],
    states: dict[uuid.UUID, dict[str, RegionRow]],
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """New results per target (region, slot order), past each region's watermark: the regions
    with a state, and the assigned regions that have none yet."""
    pair_targets: list[uuid.UUID] = []
    pair_regions: list[str] = []
    pair_after: list[datetime | None] = []
    for tid, target in targets.items():
        known = states[tid]
        for region_id, region in known.items():
            pair_targets.append(tid)
            pair_regions.append(region_id)
            pair_after.append(region.evaluated_to)
        for region_id in target["regions"]:
            if region_id not in known:
                pair_targets.append(tid)
                pair_regions.append(region_id)
                pair_after.append(None)
    out: dict[uuid.UUID, list[dict[str, Any]]] = {}
    if not pair_targets:
        return out
    rows = await _rows(
        conn,
        Q.new_results,
        {
            "target_ids": pair_targets,
            "region_ids": pair_regions,
            "after": pair_after,
            "limit": BATCH,
        },
    )
    for r in rows:
        out.setdefault(r["target_id"], []).append(r)
    return out


def _fold(
    target: dict[str, Any], regions: dict[str, RegionRow], rows: Iterable[dict[str, Any]]
) -> int:
    """Fold new results (region, slot order) into the regions' counters; returns how many."""
    confirmations: int = target["alert_confirmations"]
    n = 0
    for r in rows:
        n += 1
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
    return n


def _region_arrays(saves: list[tuple[uuid.UUID, RegionRow]]) -> dict[str, list[Any]]:
    return {
        "target_id": [tid for tid, _ in saves],
        "region_id": [r.region_id for _, r in saves],
        "consecutive_bad": [r.counters.consecutive_bad for _, r in saves],
        "consecutive_good": [r.counters.consecutive_good for _, r in saves],
        "failing": [r.counters.failing for _, r in saves],
        "failing_since": [r.counters.failing_since for _, r in saves],
        "good_since": [r.counters.good_since for _, r in saves],
        "failing_hard": [r.counters.hard for _, r in saves],
        "evaluated_to": [r.evaluated_to for _, r in saves],
        "last_reported_at": [r.last_reported_at for _, r in saves],
        "last_status": [r.last_status for _, r in saves],
        "last_error": [r.last_error for _, r in saves],
    }


def _reporting(target: dict[str, Any], regions: dict[str, RegionRow]) -> list[RegionRow]:
    """Assigned regions with a recent conclusive result, judged against the newest one seen."""
    assigned = set(target["regions"])
    seen = [r for r in regions.values() if r.region_id in assigned and r.last_reported_at]
    if not seen:
        return []
    newest = max(r.last_reported_at for r in seen if r.last_reported_at)
    window = max(REPORTING_FLOOR, timedelta(seconds=target["interval_secs"] * REPORTING_INTERVALS))
    return [r for r in seen if r.last_reported_at and r.last_reported_at >= newest - window]


@dataclass(slots=True)
class _Changes:
    """What a chunk's decisions change, written set-based by ``_apply``: a mass outage opens its
    incidents (and their outbox rows and events) a chunk per statement, not one by one."""

    opens: list[dict[str, Any]] = field(default_factory=list)
    extends: list[dict[str, Any]] = field(default_factory=list)
    closes: list[tuple[uuid.UUID, uuid.UUID, datetime | None]] = field(default_factory=list)


def _decide(
    target: dict[str, Any],
    regions: dict[str, RegionRow],
    current: dict[str, Any] | None,
    outcome: Outcome,
    changes: _Changes,
) -> None:
    """Whether to open, extend or close the target's one incident (``current`` is the open one,
    read in this transaction under the target's lock); the write is added to ``changes``.

    Its times tell the truth: it starts when the policy's quorum formed (the k-th first failure
    among the failing regions, k as many as the policy needs) and ends when it broke (the start
    of the recovery run that took the failing count below k), not at the confirming results.
    It is ``down`` when a failing region saw a ``down``, else ``degraded`` (only 429/503 without
    Retry-After)."""
    target_id = target["id"]
    reporting = _reporting(target, regions)
    failing = [r for r in reporting if r.counters.failing]
    k = needed(target["region_policy"], len(reporting))
    should_be_open = policy_met(target["region_policy"], len(failing), len(reporting))
    failing_ids = sorted(r.region_id for r in failing)
    cause = next((r.last_error for r in failing if r.last_error), None)
    status = "down" if any(r.counters.hard for r in failing) else "degraded"
    if should_be_open and current is None:
        started = quorum_start(
            [r.counters.failing_since for r in failing if r.counters.failing_since], k
        )
        changes.opens.append(
            {
                "id": str(new_id()),
                "org_id": str(target["org_id"]),
                "target_id": str(target_id),
                "started_at": started.isoformat() if started else None,
                "status": status,
                "cause": cause,
                "regions": failing_ids,
                "check_count": sum(r.counters.consecutive_bad for r in failing),
            }
        )
        # Settled by _apply: this status if the incident opened, else the worst region's.
        outcome.status_after = status
    elif should_be_open and current is not None:
        changes.extends.append(
            {
                "id": str(current["id"]),
                "target_id": str(target_id),
                # Whether the incident's status moves (a hard failure makes it ``down``).
                "moves": status == "down" and current["status"] != "down",
                "regions": failing_ids,
                "bad": sum(r.bad_seen for r in regions.values()),
                "cause": cause,
                "status": status,
            }
        )
        outcome.status_after = "down" if status == "down" else current["status"]
    elif not should_be_open and current is not None:
        involved = set(current["regions"])
        recoveries = [
            r.counters.good_since
            for r in reporting
            if r.region_id in involved and not r.counters.failing and r.counters.good_since
        ]
        ended = quorum_end(recoveries, len(failing), k) or max(
            (r.evaluated_to for r in regions.values() if r.evaluated_to), default=None
        )
        changes.closes.append((target_id, current["id"], ended))
        outcome.status_after = _worst(regions.values())
    else:
        outcome.status_after = _worst(regions.values())


async def _apply(
    conn: AsyncConnection[Any],
    changes: _Changes,
    outcomes: dict[uuid.UUID, Outcome],
    states: dict[uuid.UUID, dict[str, RegionRow]],
) -> None:
    """A chunk's incident writes, each kind in one statement, with the notification outbox and
    the event webhooks' rows in the same transaction."""
    opened: list[uuid.UUID] = []
    if changes.opens:
        rows = await _rows(conn, Q.open_incidents, {"rows": json.dumps(changes.opens)})
        by_target = {r["target_id"]: r["id"] for r in rows}
        for change in changes.opens:
            tid = uuid.UUID(change["target_id"])
            outcome = outcomes[tid]
            outcome.opened = by_target.get(tid)
            if outcome.opened is None:  # another writer's incident is open
                outcome.status_after = _worst(states[tid].values())
            else:
                opened.append(outcome.opened)
    if changes.extends:
        await conn.execute(Q.extend_incidents, {"rows": json.dumps(changes.extends)})
    # The notification outbox, in this transaction; an alert rule whose threshold a longer
    # outage now reaches notifies its channels (the extended incidents).
    await outbox.incidents_opened(conn, opened + [uuid.UUID(e["id"]) for e in changes.extends])
    await webhook_events.engine_opened_many(conn, opened)
    if changes.closes:
        rows = await _rows(
            conn,
            Q.close_incidents,
            {"ids": [c[1] for c in changes.closes], "ended_at": [c[2] for c in changes.closes]},
        )
        closed = {r["id"] for r in rows}
        for tid, incident_id, _ in changes.closes:
            if incident_id in closed:
                outcomes[tid].closed = incident_id
        ids = [c[1] for c in changes.closes if c[1] in closed]
        await outbox.incidents_closed(conn, ids)
        await webhook_events.engine_closed_many(conn, ids)
