"""How many incident evaluations a worker runs at once, and the merging of those that wait.

Ingest enqueues one evaluation job per batch it stored: a mass outage of 10,000 targets is a
hundred jobs within seconds, and the worker (``max_jobs`` 20) ran up to twenty of them at once,
each on its own PostgreSQL connection: the engine's statements of a chunk are heavy (open the
incidents, write their outbox rows), and twenty backends running them together took both
cores of a small machine from the agents' lease and ingest (their p99 was 3-10x the quiet one).
``EvaluationSlots`` lets ``concurrency`` evaluations run (``VIGIL_ENGINE_CONCURRENCY``, default
1); a job that finds them taken leaves its targets in a shared pending set and waits, and
whichever job gets a slot evaluates every pending target (up to ``take`` per pass, passes until
none is left): the backlog goes in full chunks, fewer statements for the same targets. A job
whose targets another job took returns at once. Nothing is lost if a job fails midway: the
targets' marks stay in ``evaluation_queue`` until their evaluation commits, and the sweep
evaluates marks left behind.

``rate`` (``VIGIL_ENGINE_RATE``, targets per second per worker; 0 is unpaced): a pass over
``n`` targets holds its slot at least ``n / rate`` seconds, so a mass outage's evaluations
spread over more of the alert budget instead of running flat out while the agents' ingest
of the same outage is at its peak; the targets that come in meanwhile wait (merged) for the
next pass. A normal load's passes are a few targets, and a few milliseconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable


class EvaluationSlots:
    def __init__(
        self,
        concurrency: int,
        take: int,
        rate: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
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
        # Insertion-ordered: targets are evaluated in the order they were asked for.
        self._pending: dict[str, None] = {}

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def run(
        self, target_ids: Iterable[str], evaluate: Callable[[list[str]], Awaitable[int]]
    ) -> int:
        """Evaluate ``target_ids`` (and whatever else is pending once a slot is free) with
        ``evaluate``; returns the sum of what its calls returned (0 when another job took them)."""
        for tid in target_ids:
            self._pending[tid] = None
        total = 0
        async with self._slots:
            while self._pending:
                batch = list(self._pending)[: self._take]
                for tid in batch:
                    del self._pending[tid]
                started = self._clock()
                try:
                    total += await evaluate(batch)
                except BaseException:
                    # Not evaluated: back in front for the next slot (the marks also keep them
                    # for the sweep).
                    self._pending = dict.fromkeys(batch) | self._pending
                    raise
                if self._rate > 0:
                    rest = len(batch) / self._rate - (self._clock() - started)
                    if rest > 0:
                        await self._sleep(rest)
        return total
