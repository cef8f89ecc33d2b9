"""Accounts: what authentication and the rate limiter cost a request, with 10,000 API keys of
one org in the database (``BENCH_ACCOUNTS_KEYS``).

Measured in process, on the functions every ``/api/v1`` request runs (``core/auth.py``): the
database lookup of a key the process does not remember yet (prefix index, HMAC compare), the
remembered path (HMAC and a dict lookup), and the limiter's one Redis script (revocation
marker, per-address failures, the org's and the key's GCRA buckets), beside a bare ``PING``
(the floor of any Redis round trip from this process). The Redis server's own cost of the
script is read from ``INFO commandstats`` (``usec_per_call`` of ``evalsha``).

Then as the API sees it: a served ``vigil serve`` answers ``BENCH_ACCOUNTS_HTTP`` reads (GET)
and half as many writes (DELETE of an unknown target: 404) with a remembered key, and its
histograms give the mean and the p50/p99 (bucket bounds, interpolated) of how long a request
waited for the limiter (``vigil_ratelimit_wait_seconds``: a write waits for the whole call, a
read overlaps it with its handler and waits only for what is left) and of the call itself
(``vigil_ratelimit_call_seconds``).
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
import uuid

import aiohttp
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


async def _evalsha_usec(redis: Redis) -> tuple[int, float]:
    """Calls and server microseconds of EVALSHA so far (INFO commandstats)."""
    stats = await redis.info("commandstats")
    row = stats.get("cmdstat_evalsha") or {}
    return int(row.get("calls", 0)), float(row.get("usec", 0))


def _histogram(text: str, name: str) -> tuple[list[tuple[float, float]], float, float]:
    """Cumulative buckets (upper bound, count), sum and count of one Prometheus histogram."""
    buckets: list[tuple[float, float]] = []
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
        elif line.startswith(f"{name}_sum "):
            total = float(line.split()[-1])
        elif line.startswith(f"{name}_count "):
            count = float(line.split()[-1])
    return buckets, total, count


def _delta(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> list[tuple[float, float]]:
    before = dict(a)
    return [(le, n - before.get(le, 0.0)) for le, n in b]


def _bucket_quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Prometheus' histogram_quantile: linear within the bucket the rank falls in."""
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for le, n in buckets:
        if n >= rank:
            if le == float("inf"):
                return lower
            return lower + (le - lower) * ((rank - below) / max(n - below, 1e-9))
        lower, below = le, n
    return lower


WAIT = "vigil_ratelimit_wait_seconds"
CALL = "vigil_ratelimit_call_seconds"


async def _served(vigil: Vigil, token: str, method: str, path: str, n: int) -> dict[str, float]:
    """``n`` sequential requests to a served API with one (remembered) key, and what its own
    histograms say: how long each request waited for the limiter (``wait``: the whole call,
    or for an overlapped read what was left of it when the answer was ready) and the call
    itself (``call``), in ms; and the HTTP round trip's mean."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{vigil.base_url}/metrics") as resp:
            before = await resp.text()
        started = time.perf_counter()
        for _ in range(n):
            async with s.request(method, f"{vigil.base_url}{path}", headers=headers) as r:
                await r.read()
                assert r.status < 500 and r.status != 429, r.status
        http_ms = (time.perf_counter() - started) * 1000 / n
        async with s.get(f"{vigil.base_url}/metrics") as resp:
            after = await resp.text()
    out = {"http": http_ms}
    for name, label in ((WAIT, "wait"), (CALL, "call")):
        b0, sum0, n0 = _histogram(before, name)
        b1, sum1, n1 = _histogram(after, name)
        buckets = _delta(b0, b1)
        count = n1 - n0
        out[f"{label}_mean"] = (sum1 - sum0) / count * 1000 if count else float("nan")
        out[f"{label}_p50"] = _bucket_quantile(buckets, 0.5) * 1000
        out[f"{label}_p99"] = _bucket_quantile(buckets, 0.99) * 1000
    return out


async def run(vigil: Vigil, cfg: BenchConfig) -> Outcome:
    keys_n = int(os.environ.get("BENCH_ACCOUNTS_KEYS", "10000"))
    calls = int(os.environ.get("BENCH_ACCOUNTS_CALLS", "3000"))
    http_n = int(os.environ.get("BENCH_ACCOUNTS_HTTP", "2000"))
    out = Outcome(
        "accounts",
        params={"keys": keys_n, "calls per path and run": calls, "served requests per run": http_n},
    )
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
            "INSERT INTO plan_overrides (org_id, rate_api_reads, rate_api_writes) "
            "VALUES (%s, 1000000000, 1000000000)",
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
    limit_p50: list[float] = []
    limit_mean: list[float] = []
    ping_mean: list[float] = []
    ping_p50: list[float] = []
    server_us: list[float] = []
    served: dict[str, list[float]] = {}
    loads: list[str] = []
    vigil.start_api()
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
            for _ in picks:
                a = time.perf_counter()
                await redis.ping()
                lat.append((time.perf_counter() - a) * 1000)
            ping_mean.append(sum(lat) / len(lat))
            ping_p50.append(_percentile(lat, 0.5))
            lat = []
            calls0, usec0 = await _evalsha_usec(redis)
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
            calls1, usec1 = await _evalsha_usec(redis)
            server_us.append((usec1 - usec0) / max(calls1 - calls0, 1))
            limit_p99.append(_percentile(lat, 0.99))
            limit_p50.append(_percentile(lat, 0.5))
            limit_mean.append(sum(lat) / len(lat))
            for kind, method, path, n in (
                ("reads", "GET", "/api/v1/targets?limit=1", http_n),
                ("writes", "DELETE", f"/api/v1/targets/{uuid.uuid4()}", http_n // 2),
            ):
                figures = await _served(vigil, issued[0].token, method, path, n)
                for name, value in figures.items():
                    served.setdefault(f"{kind} {name}", []).append(value)
            loads.append(" ".join(f"{x:.2f}" for x in os.getloadavg()))
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
        "rate limiter at the API, reads (GET, overlapped): wait mean",
        served["reads wait_mean"],
        "ms",
        target="< 0.2 ms",
        meets=lambda x: x < 0.2,
        digits=4,
    )
    for kind in ("reads", "writes"):
        for name in ("wait_mean", "wait_p50", "wait_p99", "call_mean", "call_p50", "call_p99"):
            if kind == "reads" and name == "wait_mean":
                continue
            out.add(
                f"rate limiter at the API, {kind}: {name}", served[f"{kind} {name}"], "ms", digits=4
            )
        out.add(f"served {kind} (HTTP, keep-alive) mean", served[f"{kind} http"], "ms")
    out.add("rate limiter in process (one Redis script) mean", limit_mean, "ms", digits=4)
    out.add("rate limiter in process p50", limit_p50, "ms", digits=4)
    out.add("rate limiter in process p99", limit_p99, "ms", digits=4)
    out.add("Redis PING round trip in process mean", ping_mean, "ms", digits=4)
    out.add("Redis PING round trip in process p50", ping_p50, "ms", digits=4)
    out.add("Redis server time per limiter script", server_us, "us", digits=2)
    out.notes.append(f"spread of runs (in-process mean): {spread(limit_mean, 4)}")
    out.notes.append(f"load average after each run: {loads}")
    return out
