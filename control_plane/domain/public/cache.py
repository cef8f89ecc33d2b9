"""The hottest public reads, answered from bytes rendered once: a page's status JSON, its HTML
page, its ``?fragment=1`` region and its overall badge.

Three layers, cheapest first:

1. this process's memo, ``MEMO_SECS`` (no I/O at all: a hot page is a dict lookup);
2. Redis, ``CACHE_SECS`` (what the other replicas rendered), under the current generation;
3. a build, at most one per key and process at a time (single-flight: the callers of a burst
   await the one build, which runs as its own task so a visitor who hangs up does not cancel it).

A build reads the page's snapshot (``PublicService.snapshot``: the rollups, itself cached), so
its cost is O(components), and renders the variant once; the answer carries an ``ETag`` (a hash
of the bytes) that a client's ``If-None-Match`` turns into a 304.

Freshness: every status-page mutation (``/api/v1/status-pages…``) bumps the generation in Redis
and clears this process's memo, so an operator's edit shows at once on the replica that took it
and within ``MEMO_SECS`` on the others. What is not a page edit (a new incident, a rollup, a
renamed target) shows within ``CACHE_SECS`` (the ``max-age`` the answers advertise anyway).
A page that does not exist is remembered too (as a 404), so unknown slugs cost no query per hit.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger("vigil.public")

MEMO_SECS = 1.0
CACHE_SECS = 10
MEMO_MAX = 2000


class Rendered(msgspec.Struct, array_like=True, frozen=True):
    """One rendered answer: ``status`` 200, or 404 for a page that is not published."""

    status: int
    media_type: str
    body: bytes
    etag: str = ""


MISSING = Rendered(404, "", b"")
_DEC = msgspec.msgpack.Decoder(Rendered)
_ENC = msgspec.msgpack.Encoder()
_memo: dict[str, tuple[float, Rendered]] = {}
_flights: dict[str, asyncio.Task[Rendered]] = {}
# Bumped by ``invalidate``: a build that started before an edit is not remembered after it.
_epoch = [0]


def rendered(status: int, media_type: str, body: bytes) -> Rendered:
    digest = hashlib.blake2b(body, digest_size=12).hexdigest()
    return Rendered(status, media_type, body, f'"{digest}"')


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of ``If-None-Match`` against our (strong) ETag."""
    if not if_none_match or not etag:
        return False
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def _gen_key(prefix: str) -> str:
    return f"{prefix}public:gen"


async def invalidate(redis: Redis, prefix: str) -> None:
    """A status page changed: every rendered answer is stale (here at once, elsewhere within
    ``MEMO_SECS``). Edits are rare next to visits, so one generation for all pages is enough."""
    _memo.clear()
    _flights.clear()
    _epoch[0] += 1
    try:
        await redis.incr(_gen_key(prefix))
    except (RedisError, OSError) as exc:
        log.warning("public_cache_invalidate_failed", error=str(exc))


async def _shared(
    redis: Redis, prefix: str, key: str, build: Callable[[], Awaitable[Rendered]]
) -> Rendered:
    rkey = ""
    try:
        gen = (await redis.get(_gen_key(prefix))) or b"0"
        rkey = f"{prefix}public:r:{gen.decode()}:{key.removeprefix(prefix)}"
        cached = await redis.get(rkey)
        if cached is not None:
            return _DEC.decode(cached)
    except (RedisError, OSError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        log.warning("public_cache_read_failed", error=str(exc))
    value = await build()
    if rkey:
        try:
            await redis.set(rkey, _ENC.encode(value), ex=CACHE_SECS)
        except (RedisError, OSError) as exc:
            log.warning("public_cache_write_failed", error=str(exc))
    return value


def _landed(key: str, epoch: int, task: asyncio.Task[Rendered]) -> None:
    if _flights.get(key) is task:
        del _flights[key]
    if task.cancelled() or task.exception() is not None or epoch != _epoch[0]:
        return
    if len(_memo) >= MEMO_MAX:
        _memo.clear()
    _memo[key] = (time.monotonic() + MEMO_SECS, task.result())


async def get(
    redis: Redis, prefix: str, key: str, build: Callable[[], Awaitable[Rendered]]
) -> Rendered:
    """``key``'s rendered answer: memo, else Redis, else one build shared by every caller."""
    key = prefix + key  # one process may serve several deployments (the tests do)
    hit = _memo.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    task = _flights.get(key)
    if task is None:
        task = asyncio.ensure_future(_shared(redis, prefix, key, build))
        _flights[key] = task
        epoch = _epoch[0]
        task.add_done_callback(lambda t: _landed(key, epoch, t))
    return await asyncio.shield(task)
