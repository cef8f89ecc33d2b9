"""The batcher hands results on by count or by age, in order, never more than max_size."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from probe_agent.batcher import Batcher
from shared.protocol import CheckResult

T0 = datetime(2030, 1, 1, tzinfo=UTC)
# Bounds the wait for a batch that must come, so a broken batcher fails instead of hanging.
GUARD_S = 5.0


def result(i: int) -> CheckResult:
    return CheckResult(
        lease_id=f"lease-{i}",
        target_id="t",
        scheduled_at=T0,
        started_at=T0,
        finished_at=T0,
        status="up",
    )


class Sink:
    def __init__(self) -> None:
        self.batches: asyncio.Queue[list[str]] = asyncio.Queue()

    async def __call__(self, batch: list[CheckResult]) -> None:
        await self.batches.put([r.lease_id for r in batch])

    async def next(self) -> list[str]:
        return await asyncio.wait_for(self.batches.get(), GUARD_S)


@pytest.fixture
async def running() -> AsyncIterator[Callable[..., tuple[Batcher, Sink]]]:
    tasks: list[asyncio.Task[None]] = []

    def start(*, max_size: int, max_age: float) -> tuple[Batcher, Sink]:
        sink = Sink()
        batcher = Batcher(sink, max_size=max_size, max_age=max_age)
        tasks.append(asyncio.create_task(batcher.run()))
        return batcher, sink

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_flushes_when_max_size_is_reached(
    running: Callable[..., tuple[Batcher, Sink]],
) -> None:
    batcher, sink = running(max_size=3, max_age=3600)
    batcher.add(result(1))
    batcher.add(result(2))
    for _ in range(10):
        await asyncio.sleep(0)
    assert sink.batches.empty()  # two results, an hour to go: nothing yet
    batcher.add(result(3))
    assert await sink.next() == ["lease-1", "lease-2", "lease-3"]
    for i in range(4, 11):
        batcher.add(result(i))
    assert await sink.next() == ["lease-4", "lease-5", "lease-6"]
    assert await sink.next() == ["lease-7", "lease-8", "lease-9"]
    assert len(batcher) == 1


async def test_flushes_when_the_oldest_is_old_enough(
    running: Callable[..., tuple[Batcher, Sink]],
) -> None:
    batcher, sink = running(max_size=1000, max_age=0.05)
    batcher.add(result(1))
    batcher.add(result(2))
    assert await sink.next() == ["lease-1", "lease-2"]
    batcher.add(result(3))
    assert await sink.next() == ["lease-3"]


async def test_close_delivers_what_is_left_and_returns() -> None:
    sink = Sink()
    batcher = Batcher(sink, max_size=4, max_age=3600)
    task = asyncio.create_task(batcher.run())
    for i in range(1, 11):
        batcher.add(result(i))
    batcher.close()
    await asyncio.wait_for(task, GUARD_S)
    got = [sink.batches.get_nowait() for _ in range(sink.batches.qsize())]
    assert got == [
        ["lease-1", "lease-2", "lease-3", "lease-4"],
        ["lease-5", "lease-6", "lease-7", "lease-8"],
        ["lease-9", "lease-10"],
    ]
    with pytest.raises(RuntimeError):
        batcher.add(result(11))


async def test_results_queue_while_the_sink_is_busy() -> None:
    gate = asyncio.Event()
    delivered: list[list[str]] = []

    async def slow_sink(batch: list[CheckResult]) -> None:
        await gate.wait()
        delivered.append([r.lease_id for r in batch])

    batcher = Batcher(slow_sink, max_size=2, max_age=3600)
    task = asyncio.create_task(batcher.run())
    for i in range(1, 6):
        batcher.add(result(i))
        await asyncio.sleep(0)
    gate.set()
    batcher.close()
    await asyncio.wait_for(task, GUARD_S)
    assert delivered == [["lease-1", "lease-2"], ["lease-3", "lease-4"], ["lease-5"]]


async def test_a_busy_agent_sends_what_piled_up_in_one_larger_batch() -> None:
    sent: list[int] = []
    gate = asyncio.Event()

    async def slow_sink(batch: list[CheckResult]) -> None:
        sent.append(len(batch))
        await gate.wait()  # an ingest call that takes its time

    batcher = Batcher(slow_sink, max_size=200, max_age=60.0, busy_max_size=1000)
    task = asyncio.create_task(batcher.run())
    try:
        for i in range(200):
            batcher.add(result(i))
        for _ in range(100):
            if sent:
                break
            await asyncio.sleep(0.01)
        assert sent == [200]
        # 1,300 more arrive while that call is in flight: they go as 1,000 (the protocol's
        # most), then the rest, not as seven batches of 200.
        for i in range(1300):
            batcher.add(result(1000 + i))
        gate.set()
        for _ in range(500):
            if sum(sent) == 1500:
                break
            await asyncio.sleep(0.01)
        assert sent == [200, 1000, 300]
    finally:
        batcher.close()
        gate.set()
        await asyncio.wait_for(task, GUARD_S)
