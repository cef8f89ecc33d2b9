"""The bench's honesty rules as pure functions (issue 18, "a benchmark that cannot flatter us"),
kept apart from the processes so that tests hold them.

- Lateness counts every slot that was due: a slot with no result (still waiting, or recorded
  ``missed``) counts as a full interval late, so a backlog cannot hide behind the punctual slots
  that did run.
- Capacity is found, not assumed: offered load steps up until a step fails (completion below 98%
  or p99 start lateness above 1 s in any of its windows); the capacity is the last step that held.
- Memory is PSS without the shared-memory part (PostgreSQL's shared buffers are a cache it fills
  as it pleases), measured once the working set is warm.
- Row writes per check (ingest) are every table's, less exactly the rows the bench itself wrote;
  the worker's (rollups) are counted too, reported apart from the hot path (lease + ingest), never
  left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MIN_COMPLETION = 0.98
MAX_P99_LATENESS_S = 1.0


def expected_slots(targets: int, seconds: float, interval: float) -> int:
    """Slots due in a window of ``seconds``: exact when the window is a whole number of
    intervals (every target has one slot per interval on its own fixed grid)."""
    return round(targets * seconds / interval)


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (``q`` in 0..1)."""
    if not ordered:
        raise ValueError("no values")
    k = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[k]


@dataclass(frozen=True)
class Lateness:
    expected: int  # slots due in the window
    completed: int  # slots checked (a result other than missed/throttled)
    missing: int  # slots due without a check: each counted as a full interval late
    p50: float
    p99: float

    @property
    def completion(self) -> float:
        return self.completed / self.expected if self.expected else 1.0


def lateness_with_missed(started_late: Iterable[float], expected: int, interval: float) -> Lateness:
    """Start lateness of a window's slots where every slot due but not checked counts as
    ``interval`` seconds late. ``started_late`` holds ``started_at - scheduled_at`` of the checked
    slots; more checked slots than expected (a window boundary off by one) pad nothing."""
    done = sorted(max(0.0, x) for x in started_late)
    missing = max(0, expected - len(done))
    values = done + [float(interval)] * missing
    if not values:
        return Lateness(expected, 0, 0, 0.0, 0.0)
    return Lateness(
        expected=expected,
        completed=len(done),
        missing=missing,
        p50=percentile(values, 0.5),
        p99=percentile(values, 0.99),
    )


def window_holds(w: Lateness) -> bool:
    return w.completion >= MIN_COMPLETION and w.p99 <= MAX_P99_LATENESS_S


@dataclass(frozen=True)
class Step:
    offered: float  # checks/s offered
    windows: tuple[Lateness, ...]

    @property
    def holds(self) -> bool:
        """A step holds when every one of its windows does (its worst window decides)."""
        return bool(self.windows) and all(window_holds(w) for w in self.windows)


def capacity(steps: Sequence[Step]) -> float:
    """The offered rate of the last step that held before the first that did not (0 when the
    first failed). Steps are in the order they ran, with rising offered load."""
    found = 0.0
    for step in steps:
        if not step.holds:
            break
        found = step.offered
    return found


def next_offered(
    steps: Sequence[Step], start: float, step_by: float, maximum: float
) -> float | None:
    """The offered rate of the next search step, or None when the search is over (a step
    failed, or the next would pass ``maximum``)."""
    if not steps:
        return start
    if not steps[-1].holds:
        return None
    nxt = steps[-1].offered + step_by
    return nxt if nxt <= maximum + 1e-9 else None


def held_share(completed_per_s: float, cap: float) -> float:
    """What an overloaded system completes, as % of its capacity."""
    return 100.0 * completed_per_s / cap if cap else 0.0


def parse_smaps_rollup(text: str) -> dict[str, int]:
    """The kB fields of ``/proc/<pid>/smaps_rollup`` (``Pss``, ``Pss_Anon``, ``Pss_Shmem``…)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        parts = rest.split()
        if sep and len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            out[key.strip()] = int(parts[0])
    return out


def private_pss_kib(fields: dict[str, int]) -> int:
    """PSS without shared memory (``Pss_Shmem``: PostgreSQL's shared buffers, a cache); older
    kernels without the split give plain PSS."""
    if "Pss_Anon" in fields or "Pss_File" in fields:
        return fields.get("Pss_Anon", 0) + fields.get("Pss_File", 0)
    return fields.get("Pss", 0) - fields.get("Pss_Shmem", 0)


def per_target_kib(mem_a_mib: float, targets_a: int, mem_b_mib: float, targets_b: int) -> float:
    """Memory per target as the slope between two warm states with different target counts."""
    if targets_b == targets_a:
        raise ValueError("two different target counts are needed")
    return 1024 * (mem_b_mib - mem_a_mib) / (targets_b - targets_a)


# Tables only the worker's rollup job writes (minute and hourly rollups, their state, the last
# 24 h of each target); every other table's writes are the hot path's.
ROLLUP_TABLES = ("result_rollups", "rollup_state", "rollup_dirty", "target_last_24h")


def split_writes(by_table: dict[str, int], bench_own: dict[str, int]) -> tuple[int, int]:
    """(hot path, rollups): rows written per table less the bench's own writes, split by
    ``ROLLUP_TABLES`` (a name starting with one, a partition, is that table's)."""
    hot = rollups = 0
    for name, n in by_table.items():
        n -= bench_own.get(name, 0)
        if name.startswith(ROLLUP_TABLES):
            rollups += n
        else:
            hot += n
    return hot, rollups
