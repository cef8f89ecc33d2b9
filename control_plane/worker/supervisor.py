"""``vigil worker`` outlives Redis: arq's worker stops on a lost Redis connection ("Connection
reset by peer") and, with nobody restarting it, evaluation stopped for good (under ``make dev``
the whole stack went down with it). The supervisor runs the worker, and when Redis goes away
waits with backoff (``vigil_worker_redis_up`` 0, a warning per attempt) and starts it again;
jobs lost meanwhile are covered by the sweeps (marks in PostgreSQL). SIGINT/SIGTERM stop it.

It also serves the worker's own Prometheus metrics (``--metrics-port`` /
``VIGIL_WORKER_METRICS_PORT``, on ``--metrics-host`` / ``VIGIL_WORKER_METRICS_HOST``, default
127.0.0.1): the standard process and Python collectors, Redis reachability, restarts and missed
slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from typing import Any

import structlog
from prometheus_client import REGISTRY, Counter, Gauge, start_http_server
from redis.exceptions import RedisError

from control_plane.domain.notifications import jobs as notifications
from control_plane.settings import Settings
from control_plane.worker.main import build_worker, open_resources

log = structlog.get_logger("vigil.worker")

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 10.0
# A worker that ran this long before Redis failed starts its next wait from the base again.
HEALTHY_RUN_S = 30.0

REDIS_UP = Gauge("vigil_worker_redis_up", "1 while the worker is connected to Redis, else 0")
RESTARTS = Counter(
    "vigil_worker_restarts", "times the worker restarted after losing Redis"
)  # exported as vigil_worker_restarts_total


def _delay(failures: int) -> float:
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0 ** min(failures, 16))
    return float(ceiling / 2 + random.uniform(0, ceiling / 2))


async def supervise(
    settings: Settings, *, metrics_port: int | None = None, metrics_host: str = "127.0.0.1"
) -> int:
    # The delivery metrics exist before the first scrape (0 dead letters is a value, not a gap):
    # the worker's startup, which also makes them, waits for Redis.
    notifications.metrics()
    if metrics_port is not None:
        start_http_server(metrics_port, addr=metrics_host, registry=REGISTRY)
        log.info("worker_metrics_serving", host=metrics_host, port=metrics_port)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    current: dict[str, Any] = {}

    def on_signal(signum: int) -> None:
        stopping.set()
        worker = current.get("worker")
        if worker is not None:
            worker.handle_sig(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    resources = open_resources(settings)
    await resources.db.open(wait=False)
    failures = 0
    REDIS_UP.set(0)
    try:
        while not stopping.is_set():
            worker = build_worker(
                settings,
                handle_signals=False,
                resources=resources,
                on_connected=lambda: REDIS_UP.set(1),
            )
            current["worker"] = worker
            started = time.monotonic()
            try:
                await worker.async_run()
            except asyncio.CancelledError:
                if stopping.is_set():
                    break
                raise
            except (RedisError, OSError) as exc:
                REDIS_UP.set(0)
                RESTARTS.inc()
                if time.monotonic() - started > HEALTHY_RUN_S:
                    failures = 0
                delay = _delay(failures)
                failures += 1
                log.warning(
                    "worker_redis_lost",
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in_s=round(delay, 2),
                )
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(worker.close(), 5)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), delay)
                continue
            if stopping.is_set():
                break
        return 0
    finally:
        REDIS_UP.set(0)
        last = current.get("worker")
        if last is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(last.close(), 10)
        await resources.redis.aclose()
        await resources.db.close()
