"""The executor: at most ``concurrency`` checks at once, a result for every lease, and a
shutdown that waits out the grace period, then cancels what is left."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

import probe_agent.checks
from probe_agent.checks.base import Attempt
from probe_agent.metrics import AgentMetrics
from probe_agent.runner import CheckExecutor
from shared.checks import TcpCheck
from shared.protocol import CheckResult, Lease
from tests.probe_agent.helpers import make_lease

# Bounds every wait for something that must happen, so a broken executor fails, not hangs.
GUARD_S = 5.0
POLL_S = 0.005


class GatedRunner:
    """A tcp runner whose checks end when the test opens the gate; counts them as they run."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.running = 0
        self.most_at_once = 0
        self.started = 0

    async def run(self, check: TcpCheck, lease: Lease) -> CheckResult:
        attempt = Attempt(lease)
        self.running += 1
        self.started += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await self.gate.wait()
        finally:
            self.running -= 1
        return attempt.finish("up")


def leases(n: int, timeout_ms: int = 2000) -> list[Lease]:
    return [make_lease(TcpCheck(host="127.0.0.1", port=1, timeout=timeout_ms)) for _ in range(n)]


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(int(GUARD_S / POLL_S)):
        if condition():
            return
        await asyncio.sleep(POLL_S)
    raise AssertionError("the executor never got there")


async def test_runs_at_most_concurrency_checks_and_answers_every_lease() -> None:
    runner = GatedRunner()
    got: list[CheckResult] = []
    executor = CheckExecutor(3, got.append, AgentMetrics(), {"tcp": runner})
    batch = leases(10)  # more than asked for: the rest wait their turn
    for lease in batch:
        executor.submit(lease)
    await until(lambda: runner.running == 3)
    assert executor.inflight == 10 and executor.free_slots == 0
    runner.gate.set()
    await until(lambda: len(got) == 10)
    assert runner.most_at_once == 3
    assert sorted(r.lease_id for r in got) == sorted(lease.lease_id for lease in batch)
    assert executor.inflight == 0 and executor.free_slots == 3
    assert await executor.shutdown(1.0) == 0


async def test_a_freed_slot_wakes_whoever_waits_for_one() -> None:
    runner = GatedRunner()
    executor = CheckExecutor(2, lambda _: None, AgentMetrics(), {"tcp": runner})
    for lease in leases(2):
        executor.submit(lease)
    waiting = asyncio.create_task(executor.wait_for_free_slot())
    await until(lambda: runner.running == 2)
    assert not waiting.done()
    runner.gate.set()
    await asyncio.wait_for(waiting, GUARD_S)
    assert executor.free_slots >= 1
    await executor.shutdown(1.0)


async def test_shutdown_cancels_what_outlasts_the_grace_period() -> None:
    runner = GatedRunner()
    got: list[CheckResult] = []
    executor = CheckExecutor(2, got.append, AgentMetrics(), {"tcp": runner})
    for lease in leases(3):  # two running, one waiting for a worker
        executor.submit(lease)
    await until(lambda: runner.running == 2)
    assert await executor.shutdown(0.05) == 3
    assert got == [] and runner.running == 0 and runner.started == 2
    assert executor.inflight == 0


async def test_a_failing_result_sink_does_not_stop_the_checks() -> None:
    runner = GatedRunner()
    runner.gate.set()
    got: list[CheckResult] = []

    def sink(result: CheckResult) -> None:
        got.append(result)
        if len(got) == 1:
            raise RuntimeError("sink broke")

    executor = CheckExecutor(1, sink, AgentMetrics(), {"tcp": runner})
    for lease in leases(3):
        executor.submit(lease)
    await until(lambda: len(got) == 3)
    assert executor.inflight == 0
    await executor.shutdown(1.0)


class StuckRunner:
    """Ignores the check's timeout: only the executor's deadline can end its checks."""

    async def run(self, check: TcpCheck, lease: Lease) -> CheckResult:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_runner_that_overruns_its_timeout_gets_a_probe_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(probe_agent.checks, "DEADLINE_SLACK_S", 0.05)
    got: list[CheckResult] = []
    executor = CheckExecutor(2, got.append, AgentMetrics(), {"tcp": StuckRunner()})
    (lease,) = leases(1, timeout_ms=10)
    executor.submit(lease)
    await until(lambda: len(got) == 1)
    (result,) = got
    assert result.lease_id == lease.lease_id
    assert result.status == "error" and result.error_code == "PROBE_ERROR"
    assert result.error == "the tcp runner overran the check's timeout"
    assert await executor.shutdown(1.0) == 0


async def test_shutdown_with_nothing_running_cancels_nothing() -> None:
    executor = CheckExecutor(4, lambda _: None, AgentMetrics(), {"tcp": GatedRunner()})
    assert await executor.shutdown(1.0) == 0


async def test_lease_ahead_queues_due_checks_for_the_next_free_worker() -> None:
    runner = GatedRunner()
    got: list[CheckResult] = []
    executor = CheckExecutor(2, got.append, AgentMetrics(), {"tcp": runner}, lease_ahead=3)
    # Asks for its workers plus the waiting line.
    assert executor.free_slots == 5
    batch = leases(5)
    for lease in batch:
        executor.submit(lease)
    await until(lambda: runner.running == 2)
    # Never more checks at once than workers; the other three wait, and no more is asked for.
    assert executor.free_slots == 0 and executor.inflight == 5 and runner.started == 2
    # Stopping: what waits is handed back (to be released), not run.
    waiting = executor.take_unstarted()
    assert {x.lease_id for x in waiting} == {x.lease_id for x in batch[2:]}
    runner.gate.set()
    await until(lambda: len(got) == 2)
    assert runner.most_at_once == 2
    assert await executor.shutdown(1.0) == 0


class SlowBoundedRunner:
    """Takes longer than the executor's slack, and says it bounds its checks itself."""

    bounded = True

    async def run(self, check: TcpCheck, lease: Lease) -> CheckResult:
        attempt = Attempt(lease)
        await asyncio.sleep(0.2)
        return attempt.finish("up")


async def test_a_bounded_runner_is_not_wrapped_in_a_second_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With the slack at 50 ms, an outer deadline would end this 200 ms check (timeout 10 ms)
    # as overrun; a runner that bounds its own checks is trusted to, and not wrapped.
    monkeypatch.setattr(probe_agent.checks, "DEADLINE_SLACK_S", 0.05)
    got: list[CheckResult] = []
    executor = CheckExecutor(1, got.append, AgentMetrics(), {"tcp": SlowBoundedRunner()})
    (lease,) = leases(1, timeout_ms=10)
    executor.submit(lease)
    await until(lambda: len(got) == 1)
    assert got[0].status == "up"
    assert await executor.shutdown(1.0) == 0


def test_the_runners_that_skip_the_second_deadline_are_the_ones_bounding_every_await() -> None:
    bounded = {kind for kind, r in probe_agent.checks.RUNNERS.items() if getattr(r, "bounded", 0)}
    assert bounded == {"http", "tcp"}
