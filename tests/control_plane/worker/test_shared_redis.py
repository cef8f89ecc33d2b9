"""Two deployments on one Redis keep apart: every key Vigil or arq writes carries its
VIGIL_REDIS_PREFIX, and each deployment's cron ticks run for it.

Before, arq's cron jobs were named ``sweep`` and ``rollup`` in every deployment, so their unique
job keys (``arq:job:sweep:<time>``) collided and one deployment's tick swallowed the other's.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import uuid

import psycopg
import redis

from control_plane.worker.main import build_worker
from tests.stack import Stack
from tests.stack import test_settings as settings_for

# Redis commands that write a key named by their first argument. Not ZREM: arq removes every
# finished job from its abort set, ``arq:abort``, which only ``Job.abort`` (never used by Vigil)
# ever fills, so that key is never written.
WRITES = {
    "SET", "SETEX", "PSETEX", "SETNX", "DEL", "UNLINK", "EXPIRE", "PEXPIRE", "PEXPIREAT",
    "ZADD", "HSET", "INCR", "INCRBY", "LPUSH", "RPUSH", "WATCH", "PERSIST",
}  # fmt: skip


def monitor(url: str, stop: threading.Event, seen: list[list[str]]) -> None:
    client = redis.Redis.from_url(url, decode_responses=True)
    with client.monitor() as m:
        for command in m.listen():
            if stop.is_set():
                return
            parts = command["command"].split()
            if parts:
                seen.append([p.strip('"') for p in parts])


async def make_late_slot(db_url: str) -> str:
    """A target whose slot is far overdue: the sweep records it as missed."""
    org, target = uuid.uuid4(), uuid.uuid4()
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("INSERT INTO orgs (id, name) VALUES (%s, 'x')", (org,))
        await conn.execute(
            "INSERT INTO targets (id, org_id, name, kind, spec, interval_secs, write_source)"
            ' VALUES (%s, %s, \'t\', \'tcp\', \'{"type": "tcp", "host": "example.com",'
            " \"port\": 80}', 60, 'api')",
            (target, org),
        )
        await conn.execute(
            "INSERT INTO target_regions (target_id, region_id) VALUES (%s, 'default')", (target,)
        )
        await conn.execute(
            "UPDATE schedules SET next_due_at = now() - interval '10 minutes' WHERE target_id = %s",
            (target,),
        )
    return str(target)


async def missed(db_url: str, target: str) -> int:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) FROM results WHERE target_id = %s AND status = 'missed'",
                (target,),
            )
        ).fetchone()
    return int(row[0]) if row else 0


async def test_two_deployments_on_one_redis_keep_their_keys_and_ticks_apart(
    stack: Stack,
) -> None:
    prefixes = ("alpha:", "beta:")
    dbs = [stack.clone(), stack.clone()]
    try:
        targets = [await make_late_slot(db) for db in dbs]
        seen: list[list[str]] = []
        stop = threading.Event()
        watcher = threading.Thread(target=monitor, args=(stack.redis_url, stop, seen), daemon=True)
        watcher.start()
        await asyncio.sleep(0.2)
        workers = []
        for db, prefix in zip(dbs, prefixes, strict=True):
            settings = settings_for(db, stack.redis_url)
            settings = dataclasses.replace(
                settings, redis=dataclasses.replace(settings.redis, prefix=prefix)
            )
            workers.append(build_worker(settings, handle_signals=False))
        tasks = [asyncio.create_task(w.async_run()) for w in workers]
        try:
            for _ in range(40):
                await asyncio.sleep(0.25)
                counts = [await missed(db, t) for db, t in zip(dbs, targets, strict=True)]
                if all(counts):
                    break
            # Each deployment's own sweep ran and recorded its own late slot.
            assert all(counts), counts
        finally:
            for w in workers:
                # arq's close() cancels a job still in flight and re-raises its CancelledError.
                with contextlib.suppress(asyncio.CancelledError):
                    await w.close()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            stop.set()
            redis.Redis.from_url(stack.redis_url).ping()  # wakes the monitor's last read
            watcher.join(5)
        keys = [parts[1] for parts in seen if parts[0].upper() in WRITES and len(parts) > 1]
        assert keys, "the workers wrote nothing to Redis"
        strays = sorted({k for k in keys if not any(p in k for p in prefixes)})
        assert not strays, strays
        assert any("alpha:sweep" in k for k in keys) and any("beta:sweep" in k for k in keys)
    finally:
        for db in dbs:
            stack.drop(db)
