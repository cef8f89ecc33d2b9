"""The agent: lease due checks, run them, publish the results; stop cleanly when asked.

Three loops share one event loop: leasing (as many slots as there are free check slots,
long-polling when nothing is due), the batcher (results to ingest by count or age, or at once
for a result that changes its target's status) and the spool drain. Leased work keeps running
while the control plane is unreachable; its results wait in the spool.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any
from wsgiref.simple_server import WSGIServer

import structlog

from probe_agent import dnscache
from probe_agent.backoff import Backoff
from probe_agent.batcher import Batcher
from probe_agent.changes import StatusMemory
from probe_agent.checks import build_runners, close_runners
from probe_agent.checks.base import CheckRunner
from probe_agent.client import (
    AgentRevokedError,
    ControlPlaneClient,
    ControlPlaneUnavailableError,
    RequestRejectedError,
)
from probe_agent.config import AgentConfig
from probe_agent.leases import LeaseSizer
from probe_agent.metrics import AgentMetrics
from probe_agent.overload import OverloadMonitor
from probe_agent.publisher import Publisher
from probe_agent.runner import CheckExecutor
from probe_agent.spool import Spool, SpoolLockedError
from shared.protocol import MAX_INGEST_BATCH, MAX_LEASE_BATCH, CheckResult, Lease

log = structlog.get_logger("vigil.agent")

# An empty lease answer that came back faster than this is followed by a pause, so a control
# plane that does not hold the long poll cannot turn the lease loop into a busy loop.
MIN_EMPTY_POLL_S = 1.0
# After an answer with fewer leases than asked for (everything due was handed out), the next ask
# waits until this long after the previous one: slots falling due meanwhile then come in one
# lease call rather than a call each, which would cost the agent (and the control plane) more
# CPU than the checks themselves. Such a slot starts up to this much later; a backlog (full
# answers) is leased without pause.
LEASE_PACE_S = 0.05
# Longest pause between two lease attempts while the control plane is away: it is back to work
# within seconds of returning.
LEASE_BACKOFF_CAP_S = 5.0
# At shutdown, how long delivering the last batches may take before they are spooled instead.
FLUSH_DEADLINE_S = 15.0


# A busy agent waits for free places to lease a batch into (``LeaseSizer.min_batch``) at most
# this long: then it asks for what is free, so leasing (and the overload monitor, which learns
# from lease answers) never stalls behind slow checks.
BUSY_LEASE_WAIT_S = 0.5
# Checks finished per second are measured over at least this long.
PACE_WINDOW_S = 0.5


class Pace:
    """Checks the executor finished per second, over the last ``PACE_WINDOW_S`` or more (None
    until first measured)."""

    __slots__ = ("_executor", "_per_s", "_since", "_since_count")

    def __init__(self, executor: CheckExecutor) -> None:
        self._executor = executor
        self._since = time.monotonic()
        self._since_count = executor.finished
        self._per_s: float | None = None

    def per_s(self, now: float) -> float | None:
        elapsed = now - self._since
        if elapsed >= PACE_WINDOW_S:
            done = self._executor.finished
            self._per_s = (done - self._since_count) / elapsed
            self._since, self._since_count = now, done
        return self._per_s


def lease_ahead_most(config: AgentConfig) -> int:
    """The most a busy agent leases ahead of its workers (``LeaseSizer``): twice its
    concurrency, within what one lease call may carry. At the agent's own pace that is well
    under a second of work, far inside a lease's expiry (the check's timeout plus a grace)."""
    return max(config.lease_ahead, min(2 * config.concurrency, MAX_LEASE_BATCH))


class AgentStartupError(Exception):
    """The agent cannot start: its spool directory or metrics port is unusable."""


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        *,
        metrics: AgentMetrics | None = None,
        runners: Mapping[str, CheckRunner[Any]] | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics or AgentMetrics()
        if runners is None:
            runners = build_runners(rdap_bootstrap_url=config.rdap_bootstrap_url)
        self.runners = runners
        dnscache.enabled = config.dns_cache
        self._stop = asyncio.Event()

    def request_stop(self) -> None:
        """Stop leasing, finish (or after the grace period cancel) running checks, flush, exit."""
        if not self._stop.is_set():
            log.info("agent_stop_requested")
        self._stop.set()

    async def run(self) -> int:
        """Run until stopped (returns 0) or the token is refused / a loop fails (returns 1).

        Raises ``AgentStartupError`` when the spool or the metrics port cannot be opened.
        """
        cfg = self.config
        try:
            spool = Spool(
                cfg.spool_dir, cfg.spool_max_bytes, on_drop=self.metrics.spool_dropped.inc
            )
        except (SpoolLockedError, OSError) as exc:
            raise AgentStartupError(f"cannot open the spool {cfg.spool_dir}: {exc}") from exc
        self.metrics.track_spool(lambda: spool.size_bytes)
        metrics_server: WSGIServer | None = None
        try:
            if cfg.metrics_port is not None:
                try:
                    metrics_server, _ = self.metrics.serve(cfg.metrics_host, cfg.metrics_port)
                except OSError as exc:
                    where = f"{cfg.metrics_host}:{cfg.metrics_port}"
                    raise AgentStartupError(f"cannot serve metrics on {where}: {exc}") from exc
                log.info("metrics_serving", host=cfg.metrics_host, port=cfg.metrics_port)
            async with ControlPlaneClient(cfg.control_plane, cfg.token) as client:
                return await self._serve(client, spool)
        finally:
            await close_runners(self.runners)
            spool.close()
            if metrics_server is not None:
                await asyncio.to_thread(metrics_server.shutdown)
                metrics_server.server_close()

    async def _serve(self, client: ControlPlaneClient, spool: Spool) -> int:
        cfg = self.config
        # A batch goes at ``batch_size`` (or age); results that piled up meanwhile (a busy agent,
        # a slow ingest) go together, up to the protocol's 1,000: fewer, larger ingest calls.
        publisher = Publisher(client, spool, self.metrics, chunk_size=MAX_INGEST_BATCH)
        batcher = Batcher(
            publisher.publish,
            max_size=cfg.batch_size,
            max_age=cfg.batch_age_ms / 1000,
            busy_max_size=MAX_INGEST_BATCH,
        )
        memory = StatusMemory()

        def report(result: CheckResult) -> None:
            batcher.add(result, urgent=memory.changed(result))

        executor = CheckExecutor(
            cfg.concurrency,
            report,
            self.metrics,
            self.runners,
            per_host_max_inflight=cfg.per_host_max_inflight,
            lease_ahead=cfg.lease_ahead,
        )
        log.info(
            "agent_started",
            control_plane=cfg.control_plane,
            concurrency=cfg.concurrency,
            lease_ahead=cfg.lease_ahead,
            spool_dir=str(cfg.spool_dir),
            spooled=spool.pending,
        )
        leasing = asyncio.create_task(self._lease_loop(client, executor, memory), name="lease")
        batching = asyncio.create_task(batcher.run(), name="batch")
        draining = asyncio.create_task(publisher.run(), name="drain")
        stopping = asyncio.create_task(self._stop.wait(), name="stop")
        done, _ = await asyncio.wait(
            {leasing, batching, draining, stopping}, return_when=asyncio.FIRST_COMPLETED
        )
        exit_code = 0
        for task in done - {stopping}:
            exit_code = max(exit_code, _failure_code(task))

        # Shutdown: no new leases, no more retries; running checks get the grace period.
        for task in (stopping, leasing, draining):
            task.cancel()
        await asyncio.gather(leasing, draining, stopping, return_exceptions=True)
        publisher.begin_shutdown()
        # What this agent leased but never started goes back now, so another agent of the
        # region runs it at once rather than after the lease expires.
        await self._release(client, executor.take_unstarted())
        cancelled = await executor.shutdown(cfg.shutdown_grace_s)
        batcher.close()
        try:
            # Past the deadline the send in flight is cut short; its batch goes to the spool.
            await asyncio.wait_for(batching, FLUSH_DEADLINE_S)
        except TimeoutError:
            log.warning("flush_deadline_passed", deadline_s=FLUSH_DEADLINE_S)
        except AgentRevokedError:
            exit_code = 1
        except Exception:
            log.exception("batcher_failed")
            exit_code = 1
        publisher.keep(batcher.take_all())
        log.info(
            "agent_stopped",
            exit_code=exit_code,
            cancelled_checks=cancelled,
            spooled=spool.pending,
        )
        return exit_code

    async def _release(self, client: ControlPlaneClient, leases: list[Lease]) -> None:
        if not leases:
            return
        try:
            released = await client.release([lease.lease_id for lease in leases])
        except (ControlPlaneUnavailableError, RequestRejectedError, AgentRevokedError) as exc:
            log.warning("release_failed", leases=len(leases), error=str(exc))
            return
        log.info("leases_released", leases=len(leases), released=released)

    async def _lease_loop(
        self, client: ControlPlaneClient, executor: CheckExecutor, memory: StatusMemory
    ) -> None:
        backoff = Backoff(cap=LEASE_BACKOFF_CAP_S)
        overload = OverloadMonitor(self.metrics, self.config.concurrency)
        sizer = LeaseSizer(executor.lease_ahead, lease_ahead_most(self.config))
        pace = Pace(executor)
        while True:
            executor.lease_ahead = sizer.ahead
            await executor.wait_for_free_slot(sizer.min_batch, within=BUSY_LEASE_WAIT_S)
            asked_at = time.monotonic()
            asked = min(executor.free_slots, MAX_LEASE_BATCH)
            try:
                batch = await client.lease(asked, self.config.lease_wait_ms)
            except (ControlPlaneUnavailableError, RequestRejectedError) as exc:
                rejected = isinstance(exc, RequestRejectedError)
                self.metrics.lease_errors.labels(
                    reason="rejected" if rejected else "unavailable"
                ).inc()
                delay = backoff.next_delay()
                level = log.error if rejected else log.warning
                level("lease_failed", error=str(exc), retry_in_s=round(delay, 2))
                await asyncio.sleep(delay)
                continue
            if backoff.failures:
                log.info("lease_resumed")
            backoff.reset()
            for lease in batch.leases:
                memory.leased(lease)
                executor.submit(lease)
            for unreadable in batch.unreadable:
                executor.answer_unreadable(unreadable)
            got = len(batch.leases) + len(batch.unreadable)
            sizer.observe(asked, got, pace.per_s(time.monotonic()))
            overload.observe(
                time.monotonic(),
                asked,
                got,
                [
                    (batch.server_time - lease.scheduled_at).total_seconds()
                    for lease in batch.leases
                ],
            )
            if got < asked:
                pause = (MIN_EMPTY_POLL_S if got == 0 else LEASE_PACE_S) - (
                    time.monotonic() - asked_at
                )
                if pause > 0:
                    await asyncio.sleep(pause)


def _failure_code(task: asyncio.Task[Any]) -> int:
    """Exit code for a loop that ended on its own (they only end by failing)."""
    if task.cancelled():
        return 1
    exc = task.exception()
    if isinstance(exc, AgentRevokedError):
        log.error("agent_token_refused", error=str(exc))
    else:
        log.error("agent_loop_failed", loop=task.get_name(), error=repr(exc))
    return 1
