"""Collects results and hands them on in batches: when ``max_size`` are waiting, when the
oldest has waited ``max_age`` seconds, or at once when an urgent one arrives (a result that
changes its target's state, see ``probe_agent.changes``), whichever comes first."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

from shared.protocol import CheckResult

Sink = Callable[[list[CheckResult]], Awaitable[None]]


class Batcher:
    """``add`` never blocks; ``run`` delivers batches to ``sink`` one at a time, in order.

    While the sink is busy (a slow ingest), results keep queueing and go out in the next batches.
    """

    def __init__(
        self, sink: Sink, *, max_size: int, max_age: float, busy_max_size: int | None = None
    ) -> None:
        if max_size < 1 or max_age <= 0:
            raise ValueError("batcher needs max_size >= 1 and max_age > 0")
        self._sink = sink
        self.max_size = max_size
        # A batch is sent once ``max_size`` wait, but takes everything waiting by then up to
        # ``busy_max_size``: results that piled up while the sink was busy go in one call.
        self.busy_max_size = max(max_size, busy_max_size or max_size)
        self.max_age = max_age
        # (added at, result, urgent)
        self._items: deque[tuple[float, CheckResult, bool]] = deque()
        # Urgent results among ``_items``: while there is one, nothing waits for the age.
        self._urgent = 0
        self._changed = asyncio.Event()
        self._closing = False

    def __len__(self) -> int:
        return len(self._items)

    def add(self, result: CheckResult, *, urgent: bool = False) -> None:
        """Queue ``result``; ``urgent`` sends it right away, with whatever else is waiting."""
        if self._closing:
            raise RuntimeError("batcher is closed")
        self._items.append((time.monotonic(), result, urgent))
        if urgent:
            self._urgent += 1
            self._changed.set()
        elif len(self._items) == 1 or len(self._items) >= self.max_size:
            self._changed.set()

    def close(self) -> None:
        """Stop taking results; ``run`` delivers what is left and returns."""
        self._closing = True
        self._changed.set()

    async def run(self) -> None:
        while True:
            if not self._items:
                if self._closing:
                    return
                self._changed.clear()
                await self._changed.wait()
                continue
            if len(self._items) < self.max_size and not self._closing and not self._urgent:
                wait = self._items[0][0] + self.max_age - time.monotonic()
                if wait > 0:
                    self._changed.clear()
                    try:
                        async with asyncio.timeout(wait):
                            await self._changed.wait()
                    except TimeoutError:
                        pass
                    continue
            await self._sink(self._take())

    def take_all(self) -> list[CheckResult]:
        """Remove and return every waiting result (what a failed ``run`` left behind)."""
        items = [result for _, result, _ in self._items]
        self._items.clear()
        self._urgent = 0
        return items

    def _take(self) -> list[CheckResult]:
        batch: list[CheckResult] = []
        for _ in range(min(self.busy_max_size, len(self._items))):
            _, result, urgent = self._items.popleft()
            self._urgent -= urgent
            batch.append(result)
        return batch
