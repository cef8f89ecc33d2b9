"""Runs leased checks as tasks, at most ``concurrency`` at a time, and hands each result on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from probe_agent.checks import RUNNERS, run_lease
from probe_agent.checks.base import CheckRunner, probe_error
from probe_agent.leases import UnreadableLease
from probe_agent.metrics import AgentMetrics
from shared.checks import check_kind
from shared.protocol import CheckResult, Lease

log = structlog.get_logger("vigil.agent.runner")


class CheckExecutor:
    def __init__(
        self,
        concurrency: int,
        on_result: Callable[[CheckResult], None],
        metrics: AgentMetrics,
        runners: Mapping[str, CheckRunner[Any]] = RUNNERS,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.concurrency = concurrency
        self._on_result = on_result
        self._metrics = metrics
        self._runners = runners
        # The lease loop never asks for more than the free slots; the semaphore still holds the
        # line if the control plane hands out more than was asked for.
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()

    @property
    def inflight(self) -> int:
        return len(self._tasks)

    @property
    def free_slots(self) -> int:
        return max(0, self.concurrency - len(self._tasks))

    async def wait_for_free_slot(self) -> None:
        while self.free_slots == 0:
            self._slot_freed.clear()
            await self._slot_freed.wait()

    def submit(self, lease: Lease) -> None:
        task = asyncio.create_task(self._run(lease), name=f"check:{lease.target_id}")
        self._tasks.add(task)
        self._metrics.inflight.set(len(self._tasks))
        task.add_done_callback(self._done)

    def answer_unreadable(self, lease: UnreadableLease) -> None:
        """A leased slot whose check this agent cannot read still gets a result: ``error``."""
        log.error(
            "lease_check_unreadable",
            target_id=lease.target_id,
            kind=lease.kind,
            reason=lease.reason,
        )
        message = f"this agent cannot read the '{lease.kind}' check: {lease.reason}"
        result = probe_error(lease.lease_id, lease.target_id, lease.scheduled_at, message)
        self._metrics.observe_check(lease.kind, result.status, 0.0)
        self._on_result(result)

    async def shutdown(self, grace: float) -> int:
        """Let running checks finish for up to ``grace`` seconds, then cancel the rest.

        Returns how many were cancelled; their leases expire on the control plane and the slots
        are leased again.
        """
        if not self._tasks:
            return 0
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            log.warning("checks_cancelled_at_shutdown", count=len(pending))
        return len(pending)

    async def _run(self, lease: Lease) -> None:
        kind = check_kind(lease.check)
        async with self._slots:
            started = time.perf_counter()
            result = await run_lease(lease, self._runners)
        self._metrics.observe_check(kind, result.status, time.perf_counter() - started)
        log.debug(
            "check_done",
            kind=kind,
            target_id=lease.target_id,
            status=result.status,
            error_code=result.error_code,
            latency_ms=result.latency_ms,
        )
        self._on_result(result)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._metrics.inflight.set(len(self._tasks))
        self._slot_freed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("check_task_failed", error=repr(task.exception()))
