"""Accounts: what authentication and the rate limiter cost a request, with 10,000 API keys of
one org in the database (``BENCH_ACCOUNTS_KEYS``).

Measured in process, on the functions every ``/api/v1`` request runs (``core/auth.py``): the
database lookup of a key the process does not remember yet (prefix index, HMAC compare), the
remembered path (HMAC and a dict lookup), and the limiter's one Redis script (revocation
marker, per-address failures, the org's and the key's GCRA buckets).
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
import uuid

import psycopg
from redis.asyncio import Redis

from bench.config import BenchConfig
from bench.proc import spread
from bench.report import Outcome
from bench.stack import Vigil
from control_plane.core.auth import _lookup
from control_plane.core.keycache import KeyCache
from control_plane.core.ratelimit import CATEGORIES, Limiter
from control_plane.core.state import Resources
from control_plane.db.pool import make_pool
from control_plane.security import tokens
from control_plane.security.sealing import Sealer
from control_plane.settings import settings_from_env


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def run(vigil: Vigil, cfg: BenchConfig) -> Outcome:
    keys_n = int(os.environ.get("BENCH_ACCOUNTS_KEYS", "10000"))
    calls = int(os.environ.get("BENCH_ACCOUNTS_CALLS", "3000"))
    out = Outcome("accounts", params={"keys": keys_n, "calls per path and run": calls})
    settings = settings_from_env(vigil.env)
    key = settings.security.token_key
    org_id, _ = await vigil.org()
    issued = [tokens.issue(key, tokens.API_TOKEN_PREFIX) for _ in range(keys_n)]
    async with await psycopg.AsyncConnection.connect(vigil.db_url, autocommit=True) as conn:
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO api_tokens (id, org_id, name, prefix, hash, last4) "
                "VALUES (%s, %s, 'bench', %s, %s, %s)",
                [(uuid.uuid4(), org_id, t.prefix, t.hash, t.token[-4:]) for t in issued],
            )
        await conn.execute(
            "INSERT INTO plan_overrides (org_id, rate_api_reads) VALUES (%s, 1000000000)",
            (org_id,),
        )
        await conn.execute("ANALYZE api_tokens")
    pool = make_pool(settings.database)
    await pool.open()
    redis = Redis.from_url(settings.redis.url)
    res = Resources(
        settings=settings,
        db=pool,
        redis=redis,
        sealer=Sealer(settings.security.sealing_keys, settings.security.primary_key_id),
    )
    limiter = Limiter(redis, settings.redis.prefix, 30)
    cache = KeyCache()
    rng = random.Random(5)
    lookup_p99: list[float] = []
    hit_p99: list[float] = []
    limit_p99: list[float] = []
    limit_mean: list[float] = []
    try:
        for _ in range(cfg.runs):
            picks = [rng.choice(issued) for _ in range(calls)]
            lat = []
            for t in picks:
                digest = tokens.token_hash(key, t.token)
                a = time.perf_counter()
                found = await _lookup(res, t.token, t.prefix, digest)
                lat.append((time.perf_counter() - a) * 1000)
                assert not isinstance(found, str), found
                # Remembered for the whole run (the deployment's 30 s would lapse mid-run).
                cache.put(digest, dataclasses.replace(found, fresh_until=time.monotonic() + 3600))
            lookup_p99.append(_percentile(lat, 0.99))
            lat = []
            for t in picks:
                a = time.perf_counter()
                entry = cache.get(tokens.token_hash(key, t.token))
                lat.append((time.perf_counter() - a) * 1000)
                assert entry is not None
            hit_p99.append(_percentile(lat, 0.99))
            lat = []
            for t in picks:
                entry = cache.get(tokens.token_hash(key, t.token))
                assert entry is not None
                a = time.perf_counter()
                await limiter.admit(
                    org_id=org_id,
                    key_id=entry.ctx.token_id,
                    ip="127.0.0.1",
                    method="GET",
                    path="/api/v1/targets",
                    budgets={c: entry.budgets.get(c) for c in CATEGORIES},
                    check_revoked=True,
                )
                lat.append((time.perf_counter() - a) * 1000)
            limit_p99.append(_percentile(lat, 0.99))
            limit_mean.append(sum(lat) / len(lat))
    finally:
        await redis.aclose()
        await pool.close()
    out.add("auth, key not yet remembered (DB lookup) p99", lookup_p99, "ms")
    out.add(
        "auth, remembered key (HMAC + dict) p99",
        hit_p99,
        "ms",
        target="< 0.1 ms",
        meets=lambda x: x < 0.1,
        digits=4,
    )
    out.add(
        "rate limiter (one Redis script) mean",
        limit_mean,
        "ms",
        target="< 0.2 ms",
        meets=lambda x: x < 0.2,
        digits=4,
    )
    out.add("rate limiter p99", limit_p99, "ms", digits=4)
    out.notes.append(f"spread of runs: {spread(limit_mean, 4)}")
    return out
