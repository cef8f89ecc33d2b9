"""Delivers result batches to ingest, spooling them to disk while the control plane is away.

``publish`` (the batcher's sink) sends a batch straight away, spooled results or not (fresh
results first); when the send fails transiently the batch is appended to the spool, and until a
call succeeds again new batches join it. ``run`` drains the spool oldest first, backing off
exponentially (with jitter, at most ``DRAIN_BACKOFF_CAP_S``) while the control plane stays
unreachable, and at full speed from the moment any send succeeds.
A batch the control plane rejects as a whole (4xx) is dropped with an error log: re-sending it
cannot succeed. A 401 stops the agent (``AgentRevokedError`` propagates).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Protocol

import structlog

from probe_agent.backoff import Backoff
from probe_agent.client import (
    AgentRevokedError,
    ControlPlaneUnavailableError,
    RequestRejectedError,
)
from probe_agent.metrics import AgentMetrics
from probe_agent.spool import Spool
from shared.protocol import MAX_INGEST_BATCH, CheckResult, IngestResponse

log = structlog.get_logger("vigil.agent.publisher")

# On shutdown, how long one last attempt to deliver a batch may take before it is spooled.
SHUTDOWN_SEND_TIMEOUT_S = 5.0
# Longest pause between two attempts to drain the spool while the control plane is away: when
# it returns, the backlog goes within seconds.
DRAIN_BACKOFF_CAP_S = 5.0


class IngestApi(Protocol):
    async def ingest(self, results: Sequence[CheckResult]) -> IngestResponse: ...


class Publisher:
    def __init__(
        self,
        api: IngestApi,
        spool: Spool,
        metrics: AgentMetrics,
        *,
        chunk_size: int = 200,
        backoff: Backoff | None = None,
    ) -> None:
        self._api = api
        self._spool = spool
        self._metrics = metrics
        self._chunk_size = max(1, min(chunk_size, MAX_INGEST_BATCH))
        self._backoff = backoff or Backoff(cap=DRAIN_BACKOFF_CAP_S)
        self._wake = asyncio.Event()
        # Set by a successful send to cut the drain's backoff short.
        self._retry = asyncio.Event()
        # The last call failed: new batches join the spool rather than each waiting out a
        # timeout; the drain (or the next success) clears it.
        self._waiting_out_outage = False
        self._closing = False
        self._revoked = False

    async def publish(self, batch: list[CheckResult]) -> None:
        """Deliver a batch now, or spool it. Raises ``AgentRevokedError`` after spooling it.

        Fresh results go first, spool or not: while the drain works through an outage's backlog,
        what was just measured is what an incident waits on, and its leases are still live (a
        result held back until they expire gets its slot probed again by another agent). Slots
        are unique, so the order results arrive in does not matter to ingest."""
        if not batch:
            return
        if self._revoked or self._waiting_out_outage:
            self._to_spool(batch)
            return
        for start in range(0, len(batch), self._chunk_size):
            chunk = batch[start : start + self._chunk_size]
            try:
                await self._send(chunk)
            except ControlPlaneUnavailableError as exc:
                log.warning("ingest_unavailable", error=str(exc), spooled=len(batch) - start)
                self._to_spool(batch[start:])
                self._waiting_out_outage = True
                return
            except (AgentRevokedError, asyncio.CancelledError):
                # Revoked, or cut short at shutdown: keep the results (re-sending is harmless).
                self._to_spool(batch[start:])
                raise
            # The control plane answers: the drain may go at full speed again.
            self._back_online()

    async def run(self) -> None:
        """Drain the spool for as long as the agent runs."""
        while True:
            chunk = self._spool.peek(self._chunk_size)
            if chunk is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._send(chunk.results)
            except ControlPlaneUnavailableError as exc:
                self._waiting_out_outage = True
                delay = self._backoff.next_delay()
                log.warning(
                    "spool_drain_retry",
                    error=str(exc),
                    pending=self._spool.pending,
                    retry_in_s=round(delay, 2),
                )
                # A fresh batch that gets through ends the wait early (``_back_online``).
                self._retry.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._retry.wait(), delay)
                continue
            self._spool.commit(chunk)
            if self._backoff.failures:
                log.info("spool_drain_resumed", pending=self._spool.pending)
            self._backoff.reset()
            self._waiting_out_outage = False

    def _back_online(self) -> None:
        """A send just succeeded: stop backing off, drain what is spooled now."""
        self._waiting_out_outage = False
        self._backoff.reset()
        self._retry.set()

    def keep(self, results: list[CheckResult]) -> None:
        """Spool results without trying to send them (what is left at shutdown)."""
        if results:
            self._to_spool(results)

    def begin_shutdown(self) -> None:
        """From now on, a failed send is spooled after one short attempt, never retried."""
        self._closing = True

    async def _send(self, results: list[CheckResult]) -> None:
        """One ingest call. A rejected batch is logged and dropped; transient errors raise."""
        try:
            if self._closing:
                try:
                    async with asyncio.timeout(SHUTDOWN_SEND_TIMEOUT_S):
                        response = await self._api.ingest(results)
                except TimeoutError:
                    raise ControlPlaneUnavailableError("no answer before shutdown") from None
            else:
                response = await self._api.ingest(results)
        except ControlPlaneUnavailableError:
            self._metrics.ingest_errors.labels(reason="unavailable").inc()
            raise
        except AgentRevokedError:
            self._metrics.ingest_errors.labels(reason="revoked").inc()
            self._revoked = True
            raise
        except RequestRejectedError as exc:
            self._metrics.ingest_errors.labels(reason="rejected").inc()
            log.error(
                "ingest_batch_dropped",
                status=exc.status,
                code=exc.code,
                message=exc.message,
                results=len(results),
            )
            return
        for rejected in response.rejected:
            bad = results[rejected.index] if 0 <= rejected.index < len(results) else None
            log.warning(
                "ingest_result_rejected",
                code=rejected.code,
                message=rejected.message,
                target_id=bad.target_id if bad else None,
                lease_id=bad.lease_id if bad else None,
            )

    def _to_spool(self, results: list[CheckResult]) -> None:
        try:
            self._spool.append(results)
        except OSError as exc:  # disk full, spool directory gone: lose these, keep running
            log.error("spool_write_failed", error=str(exc), results=len(results))
            self._metrics.spool_dropped.inc(len(results))
            return
        self._wake.set()
