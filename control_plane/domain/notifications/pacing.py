"""A worker's delivery rate: at most ``rate`` sends start per second, in the order they asked.

A mass outage queues thousands of deliveries at once; unpaced, one worker sent them at
1,000-3,500/s while the incident engine and the agents' ingest were still running, and every
process competed for the same cores. Paced (``VIGIL_NOTIFY_RATE_PER_SEC``, per worker; 0 is
unpaced), the outage's deliveries spread over more of their time budget. Starts are handed out
first come, first served (an ``asyncio.Lock`` wakes its waiters in order), so a channel's sends
start in the order the delivery job made them; nothing is dropped, a send only waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class Pacer:
    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate < 0:
            raise ValueError("rate must be 0 (unpaced) or positive")
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        """Return when this send may start: ``1 / rate`` seconds after the previous one did
        (at once when the previous one was longer ago, or the pacer is unpaced)."""
        if self.interval <= 0:
            return
        async with self._lock:
            now = self._clock()
            start = max(self._next, now)
            self._next = start + self.interval
            if start > now:
                await self._sleep(start - now)
