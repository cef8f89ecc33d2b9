"""The delivery job: claims due notifications from the outbox and sends them.

Every run (the worker calls ``deliver`` every second): settle what needs no sending (closed
during maintenance, reminders of acknowledged incidents, disabled channels), add the reminders
that are due, then claim due rows ``FOR UPDATE SKIP LOCKED`` with a lease (a worker killed
mid-delivery leaves a lease that runs out; the row is claimed again). Claimed rows are sent
concurrently: a chat channel's messages one at a time in order, other kinds' events
together (a claim holds at most one row per incident and channel, so an incident's open always
goes before its recovery). Each attempt is recorded (time,
status, latency, scrubbed excerpt); a transient failure is retried with exponential backoff and
jitter, no sooner than the receiver's ``Retry-After``; a permanent one, or the attempt cap,
dead-letters the row. Consecutive failures open the channel's circuit (its rows wait).

Held rows (an incident in maintenance while a window covering its target is active) are not
claimed: they go out when the window ends and the incident is still open, and are skipped
if it closed meanwhile.

An alert storm on a chat-style channel (more than ``storm_threshold`` opens, or recoveries, in
one run) is sent as one grouped message; PagerDuty and webhooks get one event per incident.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.registry import CollectorRegistry

from control_plane.core.state import Resources
from control_plane.db.sql import Queries
from control_plane.domain.incidents.jobs import SLOTS
from control_plane.domain.incidents.slots import EvaluationSlots
from control_plane.domain.webhooks import delivery as event_delivery
from control_plane.security.sealing import SecretUnavailable
from control_plane.settings import NotifySettings

from . import codec
from .delivery import Attempt, Sender, secret_values
from .pacing import Pacer
from .service import allow_private, context
from .transports.base import Alert
from .transports.registry import DELIVERABLE

Q = Queries.beside(__file__, "outbox")
log = structlog.get_logger("vigil.notify")


class NotifyMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.deliveries = Counter(
            "vigil_notify_deliveries_total",
            "notification attempts, by transport and outcome",
            ("transport", "outcome"),
            registry=registry,
        )
        self.latency = Histogram(
            "vigil_notify_attempt_duration_seconds",
            "notification attempt latency, by transport",
            ("transport",),
            registry=registry,
        )
        self.depth = Gauge(
            "vigil_notify_queue_depth", "notifications waiting to be sent", registry=registry
        )
        self.oldest = Gauge(
            "vigil_notify_oldest_undelivered_seconds",
            "age of the oldest notification waiting to be sent",
            registry=registry,
        )
        self.dead = Gauge(
            "vigil_notify_dead_letters", "dead-lettered notifications", registry=registry
        )
        self.open_circuits = Gauge(
            "vigil_notify_open_circuits", "channels whose circuit is open", registry=registry
        )


_metrics: NotifyMetrics | None = None


def metrics() -> NotifyMetrics:
    global _metrics
    if _metrics is None:
        _metrics = NotifyMetrics()
    return _metrics


def backoff(settings: NotifySettings, attempts: int, retry_after: float | None) -> float:
    """Seconds until the next attempt: exponential with ±20 % jitter, capped, never before
    the receiver's ``Retry-After``."""
    delay = min(settings.backoff_cap_secs, settings.backoff_base_secs * 2 ** max(0, attempts - 1))
    delay *= random.uniform(0.8, 1.2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.backoff_cap_secs))
    return float(round(delay, 3))


def codec_key(secrets: dict[str, str]) -> str:
    """A channel's sealed values as one string (they change with every PATCH and rotation)."""
    return "\x1f".join(f"{k}={v}" for k, v in sorted(secrets.items()))


def _alert(row: dict[str, Any], kind: str | None = None) -> Alert:
    severity = row["severity"] or ("critical" if row["status"] == "down" else "minor")
    return Alert(
        kind=kind or row["kind"],
        incident_id=str(row["incident_id"]),
        target_id=str(row["target_id"]),
        target_name=row["target_name"],
        target_kind=row["target_kind"],
        target_address=str(row["address"]),
        status=row["status"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        cause=row["cause"],
        severity=severity,
        channel_name=row["channel_name"],
    )


class Deliverer:
    """One worker's delivery loop state: its HTTP session (kept-alive connections behind the
    SSRF guard), its settings, and the channels' opened configs (unsealed once per channel and
    sealed value, not per row)."""

    def __init__(self, res: Resources, surging: Callable[[], bool] | None = None) -> None:
        self.res = res
        # The worker's evaluation surge (``incidents/surge.py``): while the agents' ingest of a
        # mass outage is at its peak, no run starts and a running one claims no further batch
        # (the surge ends within its max_defer_secs).
        self.surging = surging or (lambda: False)
        self.settings = res.settings.notify
        self.sender = Sender(self.settings, allow_private(res.settings))
        self.ctx = context(res.settings)
        self._limit = asyncio.Semaphore(self.settings.concurrency)
        self._pacer = Pacer(self.settings.rate_per_sec)
        self._running = asyncio.Lock()
        self._configs: dict[tuple[uuid.UUID, str], tuple[Any, list[str]]] = {}
        self._chat_kinds = sorted(k for k, info in DELIVERABLE.items() if info.chat)

    async def close(self) -> None:
        await self.sender.close()

    async def run_once(self) -> int:
        """Settle, add reminders, then claim and send batches until none is full or the run's
        time budget is spent; returns how many rows were sent (event webhooks' rows included:
        ``webhooks/delivery.py``)."""
        if self._running.locked():
            return 0  # a run is still going: it picks up what is due
        if self.surging():
            return 0  # the next run after the surge sends what is due
        async with self._running:
            events = await event_delivery.run_once(self)
            async with self.res.db.connection() as conn:
                async with conn.transaction():
                    await conn.execute(Q.skip_closed_in_maintenance)
                    await conn.execute(Q.skip_stale)
                    await conn.execute(Q.enqueue_reminders)
            deadline = time.monotonic() + self.settings.run_budget_secs
            # Two lanes: one claims and records (database time) while the other sends. A claim
            # never holds a row whose (incident, channel) has an earlier one pending, so the
            # lanes cannot reorder an incident's messages.
            counts = await asyncio.gather(*(self._lane(deadline) for _ in range(2)))
            total = sum(counts)
            async with self.res.db.connection() as conn:
                await self._gauges(conn)
            return events + total

    async def _lane(self, deadline: float) -> int:
        total = 0
        while True:
            if self.surging():
                return total
            n = await self.run_batch()
            total += n
            if n < self.settings.batch or time.monotonic() >= deadline:
                return total

    async def run_batch(self) -> int:
        """Claim one batch (one statement), send it, record it (one statement)."""
        s = self.settings
        async with self.res.db.connection() as conn:
            rows = await (
                await conn.execute(
                    Q.claim,
                    {
                        "limit": s.batch,
                        "lease_secs": s.lease_secs,
                        "chat_kinds": self._chat_kinds,
                        "hold_secs": s.chat_hold_secs,
                        "followup_secs": s.storm_followup_secs,
                        "storm_window": s.storm_window_secs,
                    },
                )
            ).fetchall()
        if not rows:
            return 0
        by_channel: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_channel[row["channel_id"]].append(row)
        done: list[dict[str, Any]] = []
        try:
            await asyncio.gather(*(self._channel(items, done) for items in by_channel.values()))
        finally:
            # Whatever was sent is recorded, even when the run is cancelled midway.
            await asyncio.shield(self._flush(done))
        return len(rows)

    def _config(self, row: dict[str, Any]) -> tuple[Any, list[str]]:
        """The channel's config with its secrets opened and the values to scrub from errors,
        cached by (channel, sealed values): a PATCH or a key rotation changes the sealed values
        and so misses the cache. Only the public config is keyed besides (it is not secret)."""
        key = (row["channel_id"], codec_key(row["secrets"]) + repr(row["config"]))
        hit = self._configs.get(key)
        if hit is None:
            cfg = codec.open_config(
                self.res.sealer, row["org_id"], row["channel_id"], row["config"], row["secrets"]
            )
            if len(self._configs) >= 4096:
                self._configs.clear()
            hit = self._configs[key] = (cfg, secret_values(cfg))
        return hit

    async def _gauges(self, conn: Any) -> None:
        g = await (await conn.execute(Q.gauges)).fetchone()
        if g is not None:
            m = metrics()
            m.depth.set(g["depth"])
            m.oldest.set(float(g["oldest"]))
            m.dead.set(g["dead"])
            m.open_circuits.set(g["open_circuits"])

    async def _channel(self, rows: list[dict[str, Any]], done: list[dict[str, Any]]) -> None:
        """One channel's claimed rows, in order; a storm on a chat channel as grouped
        messages."""
        first = rows[0]
        info = DELIVERABLE.get(first["channel_kind"])
        try:
            if info is None:
                raise SecretUnavailable(f"unknown transport {first['channel_kind']!r}")
            cfg, secrets = self._config(first)
        except (SecretUnavailable, ValueError) as exc:
            for row in rows:
                self._record(done, row, Attempt("dead", error=f"channel unusable: {exc}"[:300]))
            return
        if first["channel_kind"] == "email" and first["verified_at"] is None:
            for row in rows:
                self._record(done, row, Attempt("dead", error="email address not verified"))
            return
        batches: list[list[dict[str, Any]]] = []
        if info is not None and info.chat:
            for kind in ("open", "recovery"):
                same = [r for r in rows if r["kind"] == kind]
                if len(same) > 1 and await self._storm(first["channel_id"], kind, same):
                    batches.append(same)
            grouped_ids = {r["id"] for b in batches for r in b}
            rest = [[r] for r in rows if r["id"] not in grouped_ids]
            batches = rest + batches
        else:
            batches = [[r] for r in rows]
        if info is not None and info.chat:
            # A chat channel reads as a conversation: one message at a time, in order.
            for batch in batches:
                await self._send(cfg, secrets, first, batch, done)
        else:
            # One event per incident; a claim holds at most one row per (incident, channel),
            # so sending them together keeps each incident's open before its recovery.
            await asyncio.gather(
                *(self._send(cfg, secrets, first, batch, done) for batch in batches)
            )

    async def _send(
        self,
        cfg: Any,
        secrets: list[str],
        first: dict[str, Any],
        batch: list[dict[str, Any]],
        done: list[dict[str, Any]],
    ) -> None:
        if len(batch) == 1:
            alert = _alert(batch[0])
        else:
            members = tuple(_alert(r) for r in batch)
            alert = Alert(
                kind=batch[0]["kind"],
                incident_id=members[0].incident_id,
                target_id=members[0].target_id,
                target_name=members[0].target_name,
                target_kind=members[0].target_kind,
                target_address=members[0].target_address,
                status=members[0].status,
                started_at=members[0].started_at,
                channel_name=first["channel_name"],
                group=members,
            )
        # Paced first (in the order the sends were made), then within the concurrency limit.
        await self._pacer.wait()
        ctx = context(self.res.settings, now=datetime.now(UTC))
        async with self._limit:
            attempt = await self.sender.send(cfg, alert, ctx, secrets)
        m = metrics()
        m.deliveries.labels(transport=first["channel_kind"], outcome=attempt.outcome).inc(
            len(batch)
        )
        m.latency.labels(transport=first["channel_kind"]).observe(attempt.latency_ms / 1000)
        for row in batch:
            self._record(done, row, attempt, grouped=len(batch) > 1)

    async def _storm(self, channel_id: uuid.UUID, kind: str, batch: list[dict[str, Any]]) -> bool:
        """More than ``storm_threshold`` of ``kind`` for this channel within the storm window,
        counting this batch."""
        if len(batch) > self.settings.storm_threshold:
            return True
        async with self.res.db.connection() as conn:
            row = await (
                await conn.execute(
                    Q.recent_of_channel,
                    {
                        "channel_id": channel_id,
                        "kind": kind,
                        "window": self.settings.storm_window_secs,
                        "ids": [r["id"] for r in batch],
                    },
                )
            ).fetchone()
        recent = int(row["n"]) if row else 0
        return recent + len(batch) > self.settings.storm_threshold

    def _record(
        self,
        done: list[dict[str, Any]],
        row: dict[str, Any],
        attempt: Attempt,
        *,
        grouped: bool = False,
    ) -> None:
        """Note an attempt's outcome; ``_flush`` writes a run's outcomes in one transaction."""
        outcome = attempt.outcome
        if outcome == "retry" and row["attempts"] >= self.settings.max_attempts:
            outcome = "dead"
        delay = 0.0
        if outcome == "retry":
            delay = backoff(self.settings, row["attempts"], attempt.retry_after)
        done.append(
            {
                "id": row["id"],
                "channel_id": row["channel_id"],
                "outcome": outcome,
                "status_code": attempt.status_code,
                "latency_ms": attempt.latency_ms,
                "error": attempt.error,
                "grouped": grouped,
                "delay": delay,
            }
        )
        log.info(
            "notify_attempt",
            notification_id=str(row["id"]),
            incident_id=str(row["incident_id"]),
            channel_id=str(row["channel_id"]),
            transport=row["channel_kind"],
            kind=row["kind"],
            attempt=row["attempts"],
            outcome=outcome,
            status_code=attempt.status_code,
            latency_ms=attempt.latency_ms,
            retry_in_secs=delay if outcome == "retry" else None,
            grouped=grouped,
        )

    async def _flush(self, done: list[dict[str, Any]]) -> None:
        """Every attempt of a batch, its rows' new states and its channels' breakers: three
        set-based statements in one transaction, whatever the batch's size."""
        if not done:
            return
        # A channel's breaker follows its last outcome of the batch.
        last: dict[uuid.UUID, str] = {d["channel_id"]: d["outcome"] for d in done}
        failures: dict[uuid.UUID, int] = defaultdict(int)
        for d in done:
            if d["outcome"] != "delivered" and last[d["channel_id"]] != "delivered":
                failures[d["channel_id"]] += 1
        ok = [cid for cid, outcome in last.items() if outcome == "delivered"]
        async with self.res.db.connection() as conn, conn.transaction():
            await conn.execute(
                Q.record_outcomes,
                {
                    "ids": [d["id"] for d in done],
                    "outcomes": [d["outcome"] for d in done],
                    "status_codes": [d["status_code"] for d in done],
                    "latencies": [d["latency_ms"] for d in done],
                    "errors": [d["error"] for d in done],
                    "grouped": [d["grouped"] for d in done],
                    "delays": [d["delay"] for d in done],
                },
            )
            if ok:
                await conn.execute(Q.channels_ok, {"ids": ok})
            if failures:
                await conn.execute(
                    Q.channels_failed,
                    {
                        "ids": list(failures),
                        "failures": list(failures.values()),
                        "threshold": self.settings.circuit_threshold,
                        "open_secs": self.settings.circuit_open_secs,
                    },
                )


def state(ctx: dict[str, Any]) -> dict[str, Any]:
    """What the notification jobs keep across runs. arq hands each job a *copy* of the worker's
    ctx, so a key set by a job is gone by the next run: the holder is the worker's own (set in
    its startup, ``SHARED``), whose contents every copy shares."""
    holder: dict[str, Any] | None = ctx.get(SHARED)
    if holder is None:
        holder = ctx[SHARED] = {}
    return holder


SHARED = "notify_state"


async def deliver(ctx: dict[str, Any]) -> int:
    """The worker's cron job: one delivery run (the worker keeps one ``Deliverer``: one HTTP
    session with kept-alive connections, one run at a time)."""
    held = state(ctx)
    deliverer: Deliverer | None = held.get("deliverer")
    if deliverer is None:
        slots: EvaluationSlots | None = ctx.get(SLOTS)
        deliverer = held["deliverer"] = Deliverer(
            ctx["resources"], slots.surging if slots is not None else None
        )
    return await deliverer.run_once()


async def close(ctx: dict[str, Any]) -> None:
    deliverer: Deliverer | None = state(ctx).pop("deliverer", None)
    if deliverer is not None:
        await deliverer.close()
