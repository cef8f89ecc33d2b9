"""Wakes long-polling lease calls the moment an on-demand job is queued for their region.

A lease long-poll looks at the schedule every ``POLL_STEP_SECS`` (0.5 s); a caller waiting on a
check-now should not pay that. Queuing a job sends ``NOTIFY vigil_on_demand, '<region>'``; every
control-plane replica holds one ``LISTEN`` connection and wakes its waiting leases of that
region. If the listener is down (database restart), leases simply fall back to the poll step.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import psycopg
import structlog

log = structlog.get_logger("vigil.wakeups")

# The channel ``wake_region`` (ondemand/queries.sql) notifies.
LISTEN = "LISTEN vigil_on_demand"
RETRY_SECS = 1.0


class Wakeups:
    def __init__(self, db_url: str) -> None:
        self._db_url = db_url
        self._waiting: dict[str, set[asyncio.Event]] = {}

    async def sleep(self, region: str, secs: float) -> None:
        """Sleep up to ``secs``, less if a job for ``region`` is queued meanwhile."""
        event = asyncio.Event()
        waiting = self._waiting.setdefault(region, set())
        waiting.add(event)
        try:
            async with asyncio.timeout(secs):
                await event.wait()
        except TimeoutError:
            pass
        finally:
            waiting.discard(event)
            if not waiting:
                self._waiting.pop(region, None)

    def wake(self, region: str) -> None:
        for event in self._waiting.get(region, ()):
            event.set()

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._db_url, autocommit=True
                ) as conn:
                    await conn.execute(LISTEN)
                    async for note in conn.notifies():
                        self.wake(note.payload)
            except (psycopg.Error, OSError) as exc:
                log.warning("wakeups_listener_lost", error=str(exc), retry_in_s=RETRY_SECS)
            await asyncio.sleep(RETRY_SECS)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Wakeups]:
        task = asyncio.create_task(self._listen(), name="wakeups")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
