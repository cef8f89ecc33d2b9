"""Delivering event rows of the notification outbox (``kind = 'event'``), called by the
delivery job's run (``notifications/jobs.py``) with its ``Deliverer``: the same HTTP session
behind the SSRF guard, the same attempt log, backoff, attempt cap and dead letters as channel
alerts; the breaker is the subscription's.

Each run first announces the maintenance windows whose start or end the clock passed, then
claims the oldest pending event of each (subscription, subject), so a target's events reach a
receiver in the order they happened, and sends them concurrently, signed with the
subscription's secret. The body is the event as written in the change's transaction; its ``id``
stays the same over retries (the receiver's dedup key).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from control_plane.db.sql import Queries
from control_plane.domain.notifications.delivery import Attempt
from control_plane.domain.notifications.outbox import Q as QN
from control_plane.security.sealing import Sealer, SecretUnavailable

from . import events
from .service import SECRET_FIELD, request_for

if TYPE_CHECKING:
    from control_plane.domain.notifications.jobs import Deliverer

Q = Queries.beside(__file__)
log = structlog.get_logger("vigil.webhooks")
TRANSPORT = "event_webhook"


async def run_once(d: Deliverer) -> int:
    """Announce, claim and send one batch of events; returns how many were sent."""
    async with d.res.db.connection() as conn:
        async with conn.transaction():
            await events.announce_maintenance(conn)
            await conn.execute(Q.skip_disabled)
        rows = await (
            await conn.execute(
                Q.claim_events, {"limit": d.settings.batch, "lease_secs": d.settings.lease_secs}
            )
        ).fetchall()
    if not rows:
        return 0
    done: list[dict[str, Any]] = []
    try:
        await asyncio.gather(*(_send(d, row, done) for row in rows))
    finally:
        await asyncio.shield(_flush(d, done))
    return len(rows)


async def _send(d: Deliverer, row: dict[str, Any], done: list[dict[str, Any]]) -> None:
    from control_plane.domain.notifications.jobs import backoff, metrics

    try:
        secret = (
            d.res.sealer.open(
                row["secret"], Sealer.binding(row["org_id"], row["webhook_id"], SECRET_FIELD)
            )
            if row["secret"]
            else None
        )
    except SecretUnavailable as exc:
        attempt = Attempt("dead", error=f"webhook unusable: {exc}"[:300])
    else:
        req = request_for(row["url"], secret, row["payload"], datetime.now(UTC))
        async with d._limit:
            attempt = await d.sender.send_requests([req], [secret] if secret else [])
    outcome = attempt.outcome
    if outcome == "retry" and row["attempts"] >= d.settings.max_attempts:
        outcome = "dead"
    delay = backoff(d.settings, row["attempts"], attempt.retry_after) if outcome == "retry" else 0
    m = metrics()
    m.deliveries.labels(transport=TRANSPORT, outcome=outcome).inc()
    m.latency.labels(transport=TRANSPORT).observe(attempt.latency_ms / 1000)
    done.append(
        {
            "id": row["id"],
            "webhook_id": row["webhook_id"],
            "outcome": outcome,
            "status_code": attempt.status_code,
            "latency_ms": attempt.latency_ms,
            "error": attempt.error,
            "grouped": False,
            "delay": delay,
        }
    )
    log.info(
        "webhook_event_attempt",
        notification_id=str(row["id"]),
        webhook_id=str(row["webhook_id"]),
        event_name=row["event"],
        event_id=str(row["event_id"]),
        attempt=row["attempts"],
        outcome=outcome,
        status_code=attempt.status_code,
        retry_in_secs=delay if outcome == "retry" else None,
    )


async def _flush(d: Deliverer, done: list[dict[str, Any]]) -> None:
    if not done:
        return
    async with d.res.db.connection() as conn, conn.transaction(), conn.cursor() as cur:
        await cur.execute(
            QN.record_outcomes,
            {
                "ids": [x["id"] for x in done],
                "outcomes": [x["outcome"] for x in done],
                "status_codes": [x["status_code"] for x in done],
                "latencies": [x["latency_ms"] for x in done],
                "errors": [x["error"] for x in done],
                "grouped": [False for _ in done],
                "delays": [x["delay"] for x in done],
            },
        )
        for x in done:
            if x["outcome"] == "delivered":
                await cur.execute(Q.webhook_ok, {"id": x["webhook_id"]})
            else:
                await cur.execute(
                    Q.webhook_failed,
                    {
                        "id": x["webhook_id"],
                        "threshold": d.settings.circuit_threshold,
                        "open_secs": d.settings.circuit_open_secs,
                    },
                )
