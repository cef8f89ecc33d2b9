"""What a fault did, slot by slot, from the database and the target server's probe log.

For every (target, region) and every slot scheduled in the window:

* ``gaps``: slots of the grid (``interval`` apart) with no stored result; the database's key
  makes a second result impossible, so "exactly one result per slot" is ``gaps == 0``;
* probes: each probe the target server got is matched to the stored result it produced (same
  target and region, ``started_at`` within ``MATCH_SECS``); a probe with no result (a lease run
  twice, a result lost) counts against the latest slot scheduled before it. ``max_probes`` is the
  most any slot got; ``probe_bursts`` counts two probes of one target from one region closer than
  half an interval (a catch-up storm);
* ``missed``: ``missed`` placeholders, split into those scheduled while no agent of the region
  could run the slot (the case says when) and the rest (``missed_unexplained``);
* ``late``: real results started more than ``LATE_SECS`` after their slot, and the worst;
* rollups: every minute the window touches, once the rollup watermark has settled it (readers
  take settled minutes from the rollups and the rest from raw rows, so the README's "counts are
  exactly those of the raw results" is a promise about settled minutes), the per-minute rollup
  row against the raw rows. A minute still filling lags the raw rows by up to one run by design;
  ``run_case`` waits until the window is settled;
* ``false_incidents``: incidents opened (every target answers 200, so any is false);
* ``recovery_secs``: from the end of the fault to the end of the last slot that was missed,
  late, or probed more than once (0 when nothing was).
"""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row, tuple_row

from control_plane.domain.results.rollups import settled_until
from tests.faults.harness import INTERVAL, Probe, Stack

MATCH_SECS = 1.5
LATE_SECS = 2.0


@dataclass(frozen=True, slots=True)
class Span:
    """Seconds (epoch) during which no agent of ``region`` (None: any region) could run a slot."""

    start: float
    end: float
    region: str | None = None

    def holds(self, region: str, at: float) -> bool:
        return (self.region is None or self.region == region) and self.start <= at <= self.end


@dataclass
class Window:
    start: float  # slots scheduled in [start, end) are judged
    end: float
    fault_start: float
    fault_end: float
    blind: list[Span] = field(default_factory=list)


@dataclass
class Report:
    case: str
    slots: int = 0
    gaps: int = 0
    max_probes: int = 0
    slots_probed_twice: int = 0
    probe_bursts: int = 0
    missed: int = 0
    missed_unexplained: int = 0
    late: int = 0
    worst_late_secs: float = 0.0
    rollup_minutes: int = 0
    rollup_mismatches: int = 0
    false_incidents: int = 0
    recovery_secs: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return asdict(self)


def ts(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


RESULTS = """
SELECT target_id::text AS target_id, region_id, scheduled_at, status, started_at
FROM results WHERE scheduled_at >= %(lo)s AND scheduled_at < %(hi)s
ORDER BY target_id, region_id, scheduled_at
"""

# Raw counts against the rollup row, for every minute that holds a result of the window.
ROLLUPS = """
WITH raw AS (
    SELECT target_id, region_id, date_trunc('minute', scheduled_at) AS minute,
           count(*) AS total,
           count(*) FILTER (WHERE status = 'up') AS up,
           count(*) FILTER (WHERE status = 'down') AS down,
           count(*) FILTER (WHERE status = 'degraded') AS degraded,
           count(*) FILTER (WHERE status = 'error') AS error,
           count(*) FILTER (WHERE status = 'missed') AS missed
    FROM results
    WHERE scheduled_at >= date_trunc('minute', %(lo)s::timestamptz)
      AND scheduled_at < least(date_trunc('minute', %(hi)s::timestamptz) + interval '1 minute',
                               %(settled)s)
    GROUP BY 1, 2, 3
)
SELECT count(*) AS minutes,
       count(*) FILTER (
           WHERE r.total IS DISTINCT FROM raw.total OR r.up IS DISTINCT FROM raw.up
              OR r.down IS DISTINCT FROM raw.down OR r.degraded IS DISTINCT FROM raw.degraded
              OR r.error IS DISTINCT FROM raw.error OR r.missed IS DISTINCT FROM raw.missed
       ) AS mismatched
FROM raw
LEFT JOIN result_rollups r
  ON r.target_id = raw.target_id AND r.region_id = raw.region_id AND r.minute = raw.minute
"""

# The evidence behind a mismatch: each differing minute's rollup row against its raw rows (when
# each was received), with the rollup watermark and the marks still waiting for a run.
MISMATCH_DETAIL = """
WITH raw AS (
    SELECT target_id, region_id, date_trunc('minute', scheduled_at) AS minute,
           count(*) AS total, count(*) FILTER (WHERE status = 'missed') AS missed,
           count(*) FILTER (WHERE status = 'up') AS up,
           jsonb_agg(jsonb_build_object(
               'at', scheduled_at, 'status', status, 'received', received_at,
               'started', started_at, 'agent', agent_id) ORDER BY scheduled_at) AS rows
    FROM results
    WHERE scheduled_at >= date_trunc('minute', %(lo)s::timestamptz)
      AND scheduled_at < least(date_trunc('minute', %(hi)s::timestamptz) + interval '1 minute',
                               %(settled)s)
    GROUP BY 1, 2, 3
)
SELECT raw.target_id::text, raw.region_id, raw.minute, raw.total, raw.up, raw.missed,
       r.total AS r_total, r.up AS r_up, r.missed AS r_missed, raw.rows,
       (SELECT ran_at FROM rollup_state) AS watermark, (SELECT runs FROM rollup_state) AS runs,
       EXISTS (SELECT 1 FROM rollup_dirty d
               WHERE d.target_id = raw.target_id AND d.minute = raw.minute) AS marked,
       now() AS analysed_at
FROM raw
LEFT JOIN result_rollups r
  ON r.target_id = raw.target_id AND r.region_id = raw.region_id AND r.minute = raw.minute
WHERE r.total IS DISTINCT FROM raw.total OR r.up IS DISTINCT FROM raw.up
   OR r.missed IS DISTINCT FROM raw.missed
ORDER BY raw.minute, raw.target_id, raw.region_id
LIMIT 40
"""


async def settled(conn: psycopg.AsyncConnection[Any]) -> datetime:
    """Where the rollups' settled minutes end for the suite's targets (all ``INTERVAL``)."""
    async with conn.cursor(row_factory=tuple_row) as cur:
        row = await (await cur.execute("SELECT ran_at FROM rollup_state")).fetchone()
    ran_at: datetime | None = row[0] if row else None
    return settled_until(ran_at, INTERVAL) or datetime.min.replace(tzinfo=UTC)


def _probes_by_key(
    probes: list[Probe], targets: dict[str, int]
) -> dict[tuple[str, str], list[float]]:
    by_n = {n: tid for tid, n in targets.items()}
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for p in probes:
        if p.target in by_n:
            out[(by_n[p.target], p.region)].append(p.at)
    for times in out.values():
        times.sort()
    return out


async def analyse(stack: Stack, case: str, window: Window) -> Report:
    report = Report(case)
    async with await psycopg.AsyncConnection.connect(stack.db_url, row_factory=dict_row) as conn:
        rows = await (
            await conn.execute(RESULTS, {"lo": ts(window.start), "hi": ts(window.end)})
        ).fetchall()
        bounds = {"lo": ts(window.start), "hi": ts(window.end), "settled": await settled(conn)}
        roll = await (await conn.execute(ROLLUPS, bounds)).fetchone()
        incidents = await (await conn.execute("SELECT count(*) AS n FROM incidents")).fetchone()
        detail = (
            await (await conn.execute(MISMATCH_DETAIL, bounds)).fetchall()
            if roll and roll["mismatched"]
            else []
        )
    assert roll is not None and incidents is not None
    report.rollup_minutes = int(roll["minutes"])
    report.rollup_mismatches = int(roll["mismatched"])
    report.false_incidents = int(incidents["n"])
    if detail:
        report.notes["rollup_mismatch_detail"] = detail
        report.notes["window"] = [ts(window.start), ts(window.end), bounds["settled"]]

    slots: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        slots[(row["target_id"], row["region_id"])].append(row)
    probes = _probes_by_key(stack.server.probes, stack.targets)
    report.notes["keys"] = len(slots)
    report.notes["expected_keys"] = len(stack.targets) * 2
    last_bad = None
    unmatched = 0
    examples: list[dict[str, Any]] = []

    for key, got in slots.items():
        times = [r["scheduled_at"].timestamp() for r in got]
        report.slots += len(got)
        # Gaps: within the window, and at its edges (the grid continues past both).
        for a, b in itertools.pairwise(times):
            report.gaps += round((b - a) / INTERVAL) - 1
        report.gaps += int((times[0] - window.start) // INTERVAL)
        report.gaps += int((window.end - times[-1] - 1e-6) // INTERVAL)

        # Probes: matched to the result they produced, the rest to the slot before them.
        counts = [0] * len(got)
        starts = [
            r["started_at"].timestamp() if r["status"] != "missed" and r["started_at"] else None
            for r in got
        ]
        matched = [False] * len(got)
        key_probes = [
            t for t in probes.get(key, []) if window.start - 1 <= t < window.end + INTERVAL
        ]
        for t in key_probes:
            best = None
            for i, s in enumerate(starts):
                if s is not None and not matched[i] and abs(t - s) <= MATCH_SECS:
                    if best is None or abs(t - s) < abs(t - starts[best]):  # type: ignore[operator]
                        best = i
            if best is not None:
                matched[best] = True
                counts[best] += 1
            else:
                # Unmatched: charged to the slot whose interval it fell in (past the last slot
                # of the window it belongs to the next one, not judged here).
                i = bisect.bisect_right(times, t) - 1
                if i >= 0 and (i < len(times) - 1 or t < times[i] + INTERVAL):
                    counts[i] += 1
                    unmatched += 1
                    if len(examples) < 5:
                        near = got[max(0, i - 1) : i + 2]
                        examples.append(
                            {
                                "probe": ts(t).isoformat(),
                                "slots": [
                                    (r["scheduled_at"].isoformat(), r["status"], r["started_at"])
                                    for r in near
                                ],
                            }
                        )
        for a, b in itertools.pairwise(key_probes):
            if b - a < INTERVAL / 2:
                report.probe_bursts += 1

        for i, r in enumerate(got):
            at = times[i]
            bad = False
            report.max_probes = max(report.max_probes, counts[i])
            if counts[i] > 1:
                report.slots_probed_twice += 1
                bad = True
            if r["status"] == "missed":
                report.missed += 1
                bad = True
                if not any(span.holds(key[1], at) for span in window.blind):
                    report.missed_unexplained += 1
            elif starts[i] is not None:
                lateness = starts[i] - at  # type: ignore[operator]
                if lateness > LATE_SECS:
                    report.late += 1
                    report.worst_late_secs = max(report.worst_late_secs, round(lateness, 1))
                    bad = True
            if bad and at >= window.fault_start - INTERVAL:
                last_bad = at if last_bad is None else max(last_bad, at)
    report.notes["unmatched_probes"] = unmatched
    if examples:
        report.notes["unmatched_examples"] = examples
    if last_bad is not None:
        report.recovery_secs = round(max(0.0, last_bad + INTERVAL - window.fault_end), 1)
    return report
