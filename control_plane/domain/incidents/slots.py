"""How many incident evaluations a worker runs at once, and the merging of those that wait.

Ingest enqueues one evaluation job per batch it stored: a mass outage of 10,000 targets is a
hundred jobs within seconds, and the worker (``max_jobs`` 20) ran up to twenty of them at once,
each on its own PostgreSQL connection: the engine's statements of a chunk are heavy (open the
incidents, write their outbox rows), and twenty backends running them together took both
cores of a small machine from the agents' lease and ingest (their p99 was 3-10x the quiet one).
``EvaluationSlots`` lets ``concurrency`` evaluations run (``VIGIL_ENGINE_CONCURRENCY``, default
1); a job that finds them all taken leaves its targets in a shared pending set and returns at
once (it does not hold one of the worker's ``max_jobs`` while it waits), and each job holding a
slot evaluates every pending target (up to ``take`` per pass, passes until none is left, those
that came in meanwhile included): the backlog goes in full chunks, fewer statements for the
same targets. Nothing is lost if a job fails midway: the targets' marks stay in
``evaluation_queue`` until their evaluation commits, the failed pass's targets stay pending for
the next job, and the sweep evaluates marks left behind.

``rate`` (``VIGIL_ENGINE_RATE``, targets per second per worker; 0 is unpaced): a pass over
``n`` targets holds its slot at least ``n / rate`` seconds, so a mass outage's evaluations
spread over more of the alert budget instead of running flat out while the agents' ingest
of the same outage is at its peak; the targets that come in meanwhile wait (merged) for the
next pass. ``surge`` (``surge.py``): while targets are asked for faster than its ``inflow``
per second, passes are small and paced at its ``rate`` (the rest waits, at most its
``max_defer_secs``), so that the worker keeps out of the agents' ingest burst of a mass
outage; the notification delivery asks ``surging`` too and waits as well. A normal load's
passes are a few targets, and a few milliseconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from itertools import islice

from .surge import InflowMeter, SurgePolicy

# Paced passes (a rate's, a surge's) are this long: that rate's targets for this share of a
# second; the end of a surge is seen within it.
SURGE_STEP_SECS = 0.25


class EvaluationSlots:
    def __init__(
        self,
        concurrency: int,
        take: int,
        rate: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        surge: SurgePolicy | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if rate < 0:
            raise ValueError("rate must be 0 (unpaced) or positive")
        self._rate = rate
        self._clock = clock
        self._sleep = sleep
        self._slots = asyncio.Semaphore(concurrency)
        self._take = max(1, take)
        self._surge = surge or SurgePolicy()
        self._inflow = InflowMeter()
        # Insertion-ordered: targets are evaluated in the order they were asked for; each with
        # when it was first asked for (a surge defers none longer than its max_defer_secs).
        self._pending: dict[str, float] = {}

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def run(
        self,
        target_ids: Iterable[str],
        evaluate: Callable[[list[str]], Awaitable[int]],
        *,
        inflow: bool = True,
    ) -> int:
        """Evaluate ``target_ids`` (and whatever else is pending) with ``evaluate``; returns the
        sum of what its calls returned (0 when every slot was taken: a job holding one evaluates
        them). ``inflow``: they count toward a surge (not the sweep's: marks left behind)."""
        now = self._clock()
        new = 0
        for tid in target_ids:
            if tid not in self._pending:
                self._pending[tid] = now
                new += 1
        # Targets already pending are not inflow, nor the sweep's: it asks again for those a
        # surge defers (their marks are older than its STALE_MARK_SECS), and for some just
        # evaluated (read before their marks were cleared), which would keep a surge going.
        if inflow:
            self._inflow.add(now, new)
        if self._slots.locked():
            return 0
        total = 0
        async with self._slots:
            while self._pending:
                surging = self.surging()
                take = self._take
                if self._rate > 0:
                    # Paced passes of a quarter second each: the same rate, evenly spread,
                    # rather than a full pass flat out and then a pause.
                    take = min(take, max(1, round(self._rate * SURGE_STEP_SECS)))
                if surging:
                    take = round(self._surge.rate * SURGE_STEP_SECS)
                    if take < 1:  # a surge rate of 0 (or nearly): evaluate none meanwhile
                        await self._sleep(SURGE_STEP_SECS)
                        continue
                batch = list(islice(self._pending, take))
                asked_at = {tid: self._pending.pop(tid) for tid in batch}
                started = self._clock()
                try:
                    total += await evaluate(batch)
                except BaseException:
                    # Not evaluated: back in front for the next job (the marks also keep them
                    # for the sweep).
                    self._pending = asked_at | self._pending
                    raise
                rate = self._surge.rate if surging else self._rate
                if rate > 0:
                    rest = len(batch) / rate - (self._clock() - started)
                    if rest > 0:
                        await self._sleep(rest)
        return total

    def surging(self) -> bool:
        """Targets are asked for faster than the surge's inflow, and none pending has waited
        its max_defer_secs."""
        policy = self._surge
        if policy.inflow <= 0 or not self._pending:
            return False
        now = self._clock()
        if self._inflow.per_sec(now) < policy.inflow:
            return False
        oldest = next(iter(self._pending.values()))
        return now - oldest < policy.max_defer_secs
