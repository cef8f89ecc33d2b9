"""``deadline``: asyncio.timeout's behaviour, with timers shared among concurrent checks."""

from __future__ import annotations

import asyncio

import pytest

from probe_agent.deadlines import Deadline, deadline

FOREVER_S = 3600.0
# Bounds the wait for deadlines that must fire, so a broken one fails instead of hanging.
GUARD_STEPS = 1000


async def test_a_block_that_runs_too_long_raises_timeout_error() -> None:
    with pytest.raises(TimeoutError):
        with deadline(0.02) as scope:
            await asyncio.sleep(FOREVER_S)
    assert scope.expired
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_a_block_that_ends_in_time_is_left_alone() -> None:
    with deadline(0.02) as scope:
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)  # past the deadline: nothing may cancel the task now
    assert not scope.expired
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_many_concurrent_deadlines_each_fire_for_their_own_block() -> None:
    release = asyncio.Event()

    async def one(i: int) -> str:
        try:
            with deadline(0.05 if i % 2 else FOREVER_S):
                await release.wait()
        except TimeoutError:
            return "timed out"
        return "done"

    tasks = [asyncio.create_task(one(i)) for i in range(100)]
    # Every short deadline fires (bounded wait); then the long ones are released and finish.
    for _ in range(GUARD_STEPS):
        if sum(t.done() for t in tasks) == 50:
            break
        await asyncio.sleep(0.01)
    release.set()
    got = await asyncio.gather(*tasks)
    assert got == ["timed out" if i % 2 else "done" for i in range(100)]


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    entered = asyncio.Event()

    async def guarded() -> None:
        with deadline(FOREVER_S):
            entered.set()
            await asyncio.sleep(FOREVER_S)

    task = asyncio.create_task(guarded())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_inner_deadline_does_not_end_the_outer_block() -> None:
    with deadline(FOREVER_S) as outer:
        with pytest.raises(TimeoutError):
            with deadline(0.02):
                await asyncio.sleep(FOREVER_S)
        await asyncio.sleep(0)
    assert not outer.expired


async def test_a_deadline_is_used_once() -> None:
    scope = Deadline(1.0)
    with scope:
        pass
    with pytest.raises(RuntimeError):
        with scope:
            pass


def test_a_deadline_outside_a_task_is_refused() -> None:
    with pytest.raises(RuntimeError):
        with deadline(1.0):
            pass
