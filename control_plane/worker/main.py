"""Builds and runs the arq worker from ``Settings``."""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.connections import RedisSettings as ArqRedisSettings
from arq.worker import Worker
from redis.asyncio import Redis

from control_plane.db.pool import make_pool
from control_plane.monitoring.jobs import EVALUATE_TARGETS, queue_name
from control_plane.security.sealing import Sealer
from control_plane.settings import Settings
from control_plane.state import Resources
from control_plane.worker import tasks


def build_worker(settings: Settings, *, handle_signals: bool = True) -> Worker:
    async def startup(ctx: dict[str, Any]) -> None:
        pool = make_pool(settings.database)
        await pool.open(wait=True)
        ctx["resources"] = Resources(
            settings=settings,
            db=pool,
            redis=Redis.from_url(settings.redis.url),
            sealer=Sealer(settings.security.sealing_keys, settings.security.primary_key_id),
            queue=ctx["redis"],
        )

    async def shutdown(ctx: dict[str, Any]) -> None:
        res: Resources | None = ctx.get("resources")
        if res is not None:
            await res.redis.aclose()
            await res.db.close()

    async def evaluate_targets(ctx: dict[str, Any], target_ids: list[str]) -> int:
        return await tasks.evaluate_targets(ctx, target_ids)

    evaluate_targets.__qualname__ = EVALUATE_TARGETS

    return Worker(
        functions=[evaluate_targets],
        cron_jobs=[
            cron(tasks.sweep, name="sweep", second=set(range(60)), unique=True, timeout=30),
            cron(tasks.rollup, name="rollup", second={0, 15, 30, 45}, unique=True, timeout=600),
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


def run_worker(settings: Settings) -> int:
    build_worker(settings).run()
    return 0
