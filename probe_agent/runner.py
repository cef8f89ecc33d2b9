"""Runs leased checks as tasks, at most ``concurrency`` at a time, and hands each result on."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from probe_agent.checks import RUNNERS, run_lease
from probe_agent.checks.base import CheckRunner, probe_error
from probe_agent.leases import UnreadableLease
from probe_agent.metrics import AgentMetrics
from probe_agent.throttle import (
    DEFAULT_PER_HOST_MAX_INFLIGHT,
    HostKey,
    host_key,
    throttled_result,
)
from shared.checks import check_kind
from shared.protocol import CheckResult, Lease

log = structlog.get_logger("vigil.agent.runner")


def _debug_enabled() -> bool:
    """Whether ``log.debug`` lines go anywhere (loggers without ``is_enabled_for``: assume so)."""
    is_enabled_for = getattr(log, "is_enabled_for", None)
    return bool(is_enabled_for(logging.DEBUG)) if is_enabled_for is not None else True


class CheckExecutor:
    """Runs leased checks on up to ``concurrency`` worker tasks and hands each result on.

    Workers start as leases arrive and stay until ``shutdown``, each running one check after
    another: handing a lease to a waiting worker costs less than a new task per check. The lease
    loop asks for the free slots plus ``lease_ahead``: that many leases may wait for a worker, so
    a worker that finishes takes its next check at once instead of after a lease round trip
    (they are due already; at shutdown the waiting ones are given back). Leases beyond that (a
    control plane that hands out more than was asked for) wait their turn too. ``lease_ahead``
    may change while the executor runs (the agent's ``LeaseSizer`` grows it when busy).
    """

    def __init__(
        self,
        concurrency: int,
        on_result: Callable[[CheckResult], None],
        metrics: AgentMetrics,
        runners: Mapping[str, CheckRunner[Any]] = RUNNERS,
        per_host_max_inflight: int = DEFAULT_PER_HOST_MAX_INFLIGHT,
        lease_ahead: int = 0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if lease_ahead < 0:
            raise ValueError("lease_ahead must be >= 0")
        self.lease_ahead = lease_ahead
        if per_host_max_inflight < 1:
            raise ValueError("per_host_max_inflight must be >= 1")
        self.concurrency = concurrency
        self._on_result = on_result
        self._metrics = metrics
        self._runners = runners
        self._queue: deque[Lease] = deque()  # submitted, not picked up by a worker yet
        self._running = 0
        self.finished = 0  # checks run to the end (results handed on), since the start
        self._idle: deque[asyncio.Future[None]] = deque()  # workers waiting for a lease
        self._workers: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        # Running checks per (org, host, port); a key is removed when its count drops to 0.
        self.per_host_max_inflight = per_host_max_inflight
        self._host_inflight: dict[HostKey, int] = {}
        metrics.track_inflight(lambda: self.inflight)
        # Checked once: a debug line per check is not worth building when nobody reads it.
        self._debug = _debug_enabled()

    @property
    def inflight(self) -> int:
        """Checks submitted and not finished (running or waiting for a worker)."""
        return self._running + len(self._queue)

    @property
    def free_slots(self) -> int:
        """Leases to ask for: free workers plus the room of the waiting line."""
        return max(0, self.concurrency + self.lease_ahead - self.inflight)

    async def wait_for_free_slot(self, minimum: int = 1, within: float | None = None) -> None:
        """Until at least ``minimum`` leases may be asked for (``free_slots``), or, with
        ``within``, until that many seconds have passed and at least one may."""
        minimum = max(1, minimum)
        if self.free_slots >= minimum:
            return
        if within is not None and minimum > 1:
            try:
                async with asyncio.timeout(within):
                    await self.wait_for_free_slot(minimum)
                return
            except TimeoutError:
                pass
        while self.free_slots < (1 if within is not None else minimum):
            self._slot_freed.clear()
            await self._slot_freed.wait()

    def submit(self, lease: Lease) -> None:
        self._queue.append(lease)
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        if len(self._workers) < self.concurrency:
            worker = asyncio.create_task(self._work(), name=f"check-worker-{len(self._workers)}")
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)

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

    def take_unstarted(self) -> list[Lease]:
        """The leases waiting for a worker, taken out: they will not run (the agent stops and
        gives them back)."""
        waiting = list(self._queue)
        self._queue.clear()
        self._slot_freed.set()
        return waiting

    async def shutdown(self, grace: float) -> int:
        """Let running checks finish for up to ``grace`` seconds, then cancel the rest.

        Returns how many were cancelled (or never started); their leases expire on the control
        plane and the slots are leased again.
        """
        try:
            async with asyncio.timeout(grace):
                while self.inflight:
                    self._slot_freed.clear()
                    await self._slot_freed.wait()
        except TimeoutError:
            pass
        cancelled = self.inflight
        self._queue.clear()
        workers = set(self._workers)
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if cancelled:
            log.warning("checks_cancelled_at_shutdown", count=cancelled)
        return cancelled

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                waiter: asyncio.Future[None] = loop.create_future()
                self._idle.append(waiter)
                await waiter
                continue
            lease = self._queue.popleft()
            self._running += 1
            try:
                await self._run(lease)
            except Exception as exc:  # a failing result sink must not take the worker down
                log.error("check_task_failed", error=repr(exc))
            finally:
                self._running -= 1
                self.finished += 1
                self._slot_freed.set()

    @property
    def host_inflight(self) -> dict[HostKey, int]:
        """Running checks per (org, host, port) (a copy)."""
        return dict(self._host_inflight)

    async def _run(self, lease: Lease) -> None:
        kind = check_kind(lease.check)
        started = time.perf_counter()
        key = host_key(lease)
        if key is None:
            result = await run_lease(lease, self._runners, kind)
        else:
            # One event loop and no await between the read and the write: no lock needed.
            counters = self._host_inflight
            running = counters.get(key, 0)
            if running >= self.per_host_max_inflight:
                result = throttled_result(lease, key, self.per_host_max_inflight)
            else:
                counters[key] = running + 1
                try:
                    result = await run_lease(lease, self._runners, kind)
                finally:
                    left = counters[key] - 1
                    if left:
                        counters[key] = left
                    else:
                        del counters[key]
        self._metrics.observe_check(kind, result.status, time.perf_counter() - started)
        if self._debug:
            log.debug(
                "check_done",
                kind=kind,
                target_id=lease.target_id,
                status=result.status,
                error_code=result.error_code,
                latency_ms=result.latency_ms,
            )
        self._on_result(result)
