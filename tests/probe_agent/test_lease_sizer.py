"""How many leases the agent asks for: batches grow while it is busy (full answers) and shrink
back when it is idle (short answers), never past what it runs within ``AHEAD_S``."""

from __future__ import annotations

import asyncio

import pytest

from probe_agent.agent import Pace, lease_ahead_most
from probe_agent.config import AgentConfig
from probe_agent.leases import AHEAD_S, LeaseSizer
from probe_agent.metrics import AgentMetrics
from probe_agent.runner import CheckExecutor
from shared.protocol import MAX_LEASE_BATCH


def test_lease_ahead_grows_while_answers_are_full() -> None:
    sizer = LeaseSizer(25, 200)
    assert (sizer.ahead, sizer.min_batch, sizer.busy) == (25, 1, False)
    seen = []
    for _ in range(5):
        sizer.observe(asked=10, got=10)
        seen.append(sizer.ahead)
    assert seen == [50, 100, 200, 200, 200]
    # Busy: the next call waits until half of what it leases ahead is free.
    assert sizer.busy and sizer.min_batch == 100


def test_lease_ahead_shrinks_back_when_answers_are_short() -> None:
    sizer = LeaseSizer(25, 200)
    for _ in range(4):
        sizer.observe(asked=50, got=50)
    assert sizer.ahead == 200
    seen = []
    for _ in range(4):
        sizer.observe(asked=100, got=3)
        seen.append(sizer.ahead)
    assert seen == [100, 50, 25, 25]
    # Idle again: a lease call as soon as one place is free.
    assert not sizer.busy and sizer.min_batch == 1
    sizer.observe(asked=100, got=0)
    assert sizer.ahead == 25


def test_lease_ahead_from_zero_still_grows() -> None:
    sizer = LeaseSizer(0, 64)
    sizer.observe(asked=5, got=5)
    assert sizer.ahead == 1
    sizer.observe(asked=5, got=5)
    assert sizer.ahead == 2
    sizer.observe(asked=0, got=0)  # asked for nothing: not a full answer
    assert sizer.ahead == 1


def test_lease_ahead_is_capped_by_the_pace_checks_finish_at() -> None:
    sizer = LeaseSizer(25, 400)
    for _ in range(5):
        sizer.observe(asked=10, got=10, per_s=1000.0)
    assert sizer.ahead == 400
    # Checks slow down (timing out, say) to 60/s: no more than AHEAD_S of them wait.
    sizer.observe(asked=10, got=10, per_s=60.0)
    assert sizer.ahead == int(60 * AHEAD_S)
    # Never below the configured lease-ahead, however slow.
    sizer.observe(asked=10, got=10, per_s=1.0)
    assert sizer.ahead == 25


def test_the_most_leased_ahead_follows_concurrency_within_one_lease_call() -> None:
    def cfg(concurrency: int, lease_ahead: int = 25) -> AgentConfig:
        return AgentConfig(
            control_plane="http://cp.example",
            token="sm_agent_x",
            concurrency=concurrency,
            lease_ahead=lease_ahead,
        )

    assert lease_ahead_most(cfg(100)) == 200
    assert lease_ahead_most(cfg(5_000)) == MAX_LEASE_BATCH
    assert lease_ahead_most(cfg(5, lease_ahead=40)) == 40


def test_a_negative_base_is_refused() -> None:
    with pytest.raises(ValueError):
        LeaseSizer(-1, 10)


async def test_waiting_for_a_batch_of_free_places_gives_up_after_within() -> None:
    never = asyncio.Event()

    class Stuck:
        async def run(self, check: object, lease: object) -> object:
            await never.wait()
            raise AssertionError("unreachable")

    from tests.probe_agent.test_executor import leases

    executor = CheckExecutor(2, lambda _: None, AgentMetrics(), {"tcp": Stuck()}, lease_ahead=4)
    for lease in leases(3):
        executor.submit(lease)
    assert executor.free_slots == 3
    # Three free: a wait for one returns at once, a wait for five only after ``within``.
    await asyncio.wait_for(executor.wait_for_free_slot(1), 0.5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(executor.wait_for_free_slot(5, within=0.1), 2.0)
    assert 0.09 <= loop.time() - started < 1.0
    # Without ``within`` it waits for the five.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(executor.wait_for_free_slot(5), 0.2)
    await executor.shutdown(0.0)


async def test_pace_counts_finished_checks_per_second() -> None:
    executor = CheckExecutor(1, lambda _: None, AgentMetrics(), {})
    pace = Pace(executor)
    t0 = pace._since
    assert pace.per_s(t0 + 0.1) is None  # too soon to say
    executor.finished += 30
    assert pace.per_s(t0 + 0.6) == pytest.approx(50.0)
    assert pace.per_s(t0 + 0.7) == pytest.approx(50.0)  # kept until the next window
    executor.finished += 10
    assert pace.per_s(t0 + 1.2) == pytest.approx(10 / 0.6)
