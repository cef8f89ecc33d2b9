"""The worker's share of the database: its heavy statements take turns.

A mass outage gives the worker three kinds of heavy PostgreSQL work at once: the incident
engine's chunks (open 250 incidents and their outbox rows), and the delivery lanes' claims and
recordings of up to 500 rows each. Each runs on a backend of its own, so at its peak the worker
held two or three busy backends on a two-core machine, beside its own Python, and the agents'
lease and ingest (another process, other backends) waited for a core.

``DbTurns`` bounds how many of those statements run at once (``VIGIL_WORKER_DB_TURNS``, the
worker's pool is not the bound: its connections are also held while waiting on the network).
Nothing is paced or delayed beyond its turn: a statement starts the moment one ends, so the
worker's database work goes at full speed on ``turns`` backends and the others stay free for
the API. ``0``: no bound (each job's statements run as they come).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class DbTurns:
    def __init__(self, turns: int) -> None:
        if turns < 0:
            raise ValueError("turns must be 0 (no bound) or positive")
        self.turns = turns
        self._sem = asyncio.Semaphore(turns) if turns else None
        # How many turns are being taken right now, and the most seen at once (for tests).
        self.running = 0
        self.most = 0

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold a turn for one heavy statement (or one short transaction of them)."""
        if self._sem is None:
            yield
            return
        async with self._sem:
            self.running += 1
            self.most = max(self.most, self.running)
            try:
                yield
            finally:
                self.running -= 1


# Code run outside a worker (the API, tests driving a job without one) takes no turns.
UNBOUNDED = DbTurns(0)
