"""Builds and runs the arq worker from ``Settings``: each slice's jobs, registered here.

- ``evaluate_targets`` (incidents): enqueued by ingest and the heartbeat receiver;
- ``sweep`` (every second): missed slots (agent API), overdue heartbeats, marks left behind
  (incidents), and now and then the daily partitions (results);
- ``deliver_notifications`` (every second): the notification outbox (notifications);
- ``telegram_updates`` (every 2 s): the central Telegram bot's link codes and unlinks (a no-op
  without ``VIGIL_TELEGRAM_BOT_TOKEN``);
- ``rollup`` (every 15 s): the per-minute and hourly rollups (results);
- ``in_flight_snapshot`` (every 5 s): every org's checks in flight, for the dashboard.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog
from arq import cron
from arq.connections import RedisSettings as ArqRedisSettings
from arq.worker import Worker
from prometheus_client import Counter
from redis.asyncio import Redis

from control_plane.core import idempotency
from control_plane.core.queue import EVALUATE_TARGETS, cron_name, job_resources, queue_name
from control_plane.core.state import Resources
from control_plane.db.pool import make_pool
from control_plane.domain.agent_api.jobs import sweep_missed
from control_plane.domain.audit.jobs import purge_audit_log
from control_plane.domain.dashboard.in_flight import SNAPSHOT_EVERY_SECS
from control_plane.domain.dashboard.jobs import snapshot_in_flight
from control_plane.domain.heartbeats.jobs import sweep_overdue
from control_plane.domain.incidents import engine
from control_plane.domain.incidents import jobs as incidents
from control_plane.domain.incidents.slots import EvaluationSlots
from control_plane.domain.incidents.surge import SurgePolicy
from control_plane.domain.notifications import jobs as notifications
from control_plane.domain.notifications import telegram_link
from control_plane.domain.results import jobs as results
from control_plane.security.sealing import Sealer
from control_plane.settings import Settings

log = structlog.get_logger("vigil.worker")
# The worker's jobs wait this long for a pooled connection (nobody waits on them).
WORKER_ACQUIRE_TIMEOUT_S = 30.0
# The sweep makes the daily partitions on its first run and every this many runs after.
PARTITIONS_EVERY = 600

# On the process's default registry, served by ``vigil worker --metrics-port``.
SLOTS_MISSED = Counter(
    "vigil_slots_missed", "slots recorded as missed by the sweep (no result in time)"
)  # exported as vigil_slots_missed_total


async def sweep(ctx: dict[str, Any]) -> None:
    """Every second: missed slots, overdue heartbeats, evaluations left behind; now and then,
    partitions."""
    res = job_resources(ctx)
    missed = await sweep_missed(res)
    if missed:
        SLOTS_MISSED.inc(missed)
        log.info("slots_missed", count=missed)
    await sweep_overdue(res)
    await incidents.sweep_marks(ctx)
    await incidents.release_maintenance(ctx)
    ctx["sweeps"] = ctx.get("sweeps", 0) + 1
    if ctx["sweeps"] % PARTITIONS_EVERY == 1:
        await results.ensure_partitions(res)


async def purge_idempotency_keys(ctx: dict[str, Any]) -> int:
    """Expired Idempotency-Key answers (core/idempotency.py), every few minutes."""
    return await idempotency.purge_expired(job_resources(ctx).db)


def open_resources(settings: Settings) -> Resources:
    """The worker's pool and Redis client; open the pool before use (``pool.open``)."""
    return Resources(
        settings=settings,
        db=make_pool(settings.database, acquire_timeout=WORKER_ACQUIRE_TIMEOUT_S),
        redis=Redis.from_url(settings.redis.url),
        sealer=Sealer(settings.security.sealing_keys, settings.security.primary_key_id),
    )


def build_worker(
    settings: Settings,
    *,
    handle_signals: bool = True,
    resources: Resources | None = None,
    on_connected: Callable[[], None] | None = None,
) -> Worker:
    """The arq worker. With ``resources`` (the supervisor's, kept across Redis reconnects) it
    uses those and leaves them open at shutdown; ``on_connected`` runs once arq reached Redis."""

    async def startup(ctx: dict[str, Any]) -> None:
        res = resources
        if res is None:
            res = open_resources(settings)
            await res.db.open(wait=True)
        res.queue = ctx["redis"]
        ctx["resources"] = res
        # The notification jobs' state across runs (arq copies ctx per job; this dict is shared).
        ctx[notifications.SHARED] = {}
        # Evaluations in flight at once, the waiting ones merged (incidents/slots.py).
        eng = settings.engine
        ctx[incidents.SLOTS] = EvaluationSlots(
            eng.concurrency,
            4 * engine.CHUNK,
            eng.rate,
            surge=SurgePolicy(eng.surge_inflow, eng.surge_rate, eng.surge_max_secs),
        )
        # The delivery metrics exist from the start (0 dead letters is a value, not a gap).
        notifications.metrics()
        if on_connected is not None:
            on_connected()

    async def shutdown(ctx: dict[str, Any]) -> None:
        await notifications.close(ctx)
        await telegram_link.close(ctx)
        res: Resources | None = ctx.get("resources")
        if res is not None and resources is None:
            await res.redis.aclose()
            await res.db.close()

    async def evaluate_targets(ctx: dict[str, Any], target_ids: list[str]) -> int:
        return await incidents.evaluate_targets(ctx, target_ids)

    evaluate_targets.__qualname__ = EVALUATE_TARGETS

    return Worker(
        functions=[evaluate_targets],
        cron_jobs=[
            cron(
                sweep,
                name=cron_name(settings.redis, "sweep"),
                second=set(range(60)),
                unique=True,
                timeout=30,
            ),
            cron(
                notifications.deliver,
                name=cron_name(settings.redis, "deliver_notifications"),
                second=set(range(60)),
                unique=True,
                timeout=60,
            ),
            cron(
                telegram_link.poll,
                name=cron_name(settings.redis, "telegram_updates"),
                second=set(range(0, 60, 2)),
                unique=True,
                timeout=30,
            ),
            cron(
                results.rollup,
                name=cron_name(settings.redis, "rollup"),
                second={0, 15, 30, 45},
                unique=True,
                timeout=600,
            ),
            cron(
                snapshot_in_flight,
                name=cron_name(settings.redis, "in_flight_snapshot"),
                second=set(range(0, 60, SNAPSHOT_EVERY_SECS)),
                unique=True,
                timeout=30,
            ),
            cron(
                purge_audit_log,
                name=cron_name(settings.redis, "purge_audit_log"),
                minute={17},
                second={0},
                unique=True,
                timeout=600,
            ),
            cron(
                purge_idempotency_keys,
                name=cron_name(settings.redis, "purge_idempotency_keys"),
                minute=set(range(0, 60, 5)),
                second={7},
                unique=True,
                timeout=300,
            ),
        ],
        redis_settings=ArqRedisSettings.from_dsn(settings.redis.url),
        queue_name=queue_name(settings.redis),
        on_startup=startup,
        on_shutdown=shutdown,
        keep_result=0,
        poll_delay=0.05,
        max_jobs=20,
        handle_signals=handle_signals,
        job_timeout=120,
    )


def run_worker(
    settings: Settings, metrics_port: int | None = None, metrics_host: str = "127.0.0.1"
) -> int:
    """``vigil worker``: the arq worker under a supervisor that outlives Redis restarts."""
    from control_plane.worker.supervisor import supervise

    return asyncio.run(supervise(settings, metrics_port=metrics_port, metrics_host=metrics_host))
