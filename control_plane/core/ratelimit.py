"""Per-minute rate budgets on ``/api/v1``: GCRA in one Redis script, shared by every replica.

Every authenticated ``/api/v1`` request is one call of ``SCRIPT``, which in one atomic step:

1. refuses a key revoked since this process cached it (the revocation marker, see
   ``core/auth.py``: revocation holds at once on every replica);
2. refuses a client address that failed authentication too often (``per_ip_auth_failures``);
3. checks the request's category against the org's bucket and the key's bucket
   (``per_org_<category>``, ``per_key_<category>``) and spends one request from both, or none.

Categories (the reference): ``bulk_ops`` (a ``/bulk…`` path), ``test_now`` (``…/test``),
``check_now`` (``…/check-now``), else ``api_reads`` (GET/HEAD/OPTIONS) or ``api_writes``. The
budgets are the org's plan (``org_limits.rate_*``, overridable per org); NULL is no limit.

GCRA: a bucket of ``limit`` per minute is a theoretical arrival time (TAT); each request moves it
``60 s / limit`` on; a request is refused when the TAT would be more than a minute ahead. The
whole budget may be spent at once, then it refills evenly. Redis' own clock is the only clock.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from redis.asyncio import Redis

from control_plane.core.errors import ApiError

CATEGORIES = ("api_writes", "api_reads", "bulk_ops", "test_now", "check_now")
READS = frozenset({"GET", "HEAD", "OPTIONS"})
STATE_KEY = "vigil_ratelimit"

# KEYS: the revocation marker (or ''), the address' failure counter, then one key per bucket.
# ARGV: the per-minute failure allowance (0: none), then each bucket's limit and period (ms).
SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if KEYS[1] ~= '' and redis.call('EXISTS', KEYS[1]) == 1 then
  return {-1, 0, 0, 0, 0}
end
local af_limit = tonumber(ARGV[1])
if af_limit > 0 then
  local fails = tonumber(redis.call('GET', KEYS[2]) or '0')
  if fails >= af_limit then
    local ttl = redis.call('PTTL', KEYS[2])
    if ttl < 0 then ttl = 1000 end
    return {-2, 0, af_limit, ttl, ttl}
  end
end
local n = #KEYS - 2
local best_i, best_rem, best_limit, best_reset = 0, -1, 0, 0
local tats = {}
for i = 1, n do
  local limit = tonumber(ARGV[2 * i])
  local period = tonumber(ARGV[2 * i + 1])
  local step = period / limit
  local tat = tonumber(redis.call('GET', KEYS[2 + i]) or now)
  if tat < now then tat = now end
  local new_tat = tat + step
  local allow_at = new_tat - period
  if now < allow_at then
    return {0, i, limit, math.ceil(allow_at - now), math.ceil(tat - now)}
  end
  tats[i] = new_tat
  local rem = math.floor((period - (new_tat - now)) / step)
  if best_rem < 0 or rem < best_rem then
    best_i, best_rem, best_limit, best_reset = i, rem, limit, new_tat - now
  end
end
for i = 1, n do
  redis.call('SET', KEYS[2 + i], string.format('%.3f', tats[i]), 'PX',
             math.ceil(tats[i] - now) + 1000)
end
return {1, best_i, best_limit, best_rem, math.ceil(best_reset)}
"""

FAIL_SCRIPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""


def category(method: str, path: str) -> str:
    segments = [s for s in path.split("/") if s]
    if any(s.startswith("bulk") for s in segments):
        return "bulk_ops"
    last = segments[-1] if segments else ""
    if last == "test":
        return "test_now"
    if last == "check-now":
        return "check_now"
    return "api_reads" if method.upper() in READS else "api_writes"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the headers say: the tightest bucket's limit, what is left, when it is full."""

    limit: int
    remaining: int
    reset_at: int  # unix seconds

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(self.remaining, 0)),
            "X-RateLimit-Reset": str(self.reset_at),
        }


@dataclass(frozen=True, slots=True)
class Bucket:
    """A GCRA bucket of ``limit`` requests per ``period_ms``; ``scope`` names it in a 429."""

    scope: str
    key: str
    limit: int
    period_ms: int = 60_000


class Revoked(Exception):
    """The key was revoked after this process cached it."""


class Limiter:
    """The rate limiter of one app; ``prefix`` namespaces its Redis keys (shared by replicas)."""

    def __init__(self, redis: Redis, prefix: str, auth_failures_per_minute: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.auth_failures = auth_failures_per_minute
        self._script = redis.register_script(SCRIPT)
        self._fail = redis.register_script(FAIL_SCRIPT)
        # Buckets known to refuse until a moment (time.monotonic()): a spent GCRA bucket admits
        # nothing before its allow-at time (its TAT only moves on), so a flood after a 429 is
        # refused here without a Redis call. Exact, but for an operator raising a budget
        # meanwhile (then at most one Retry-After too long).
        self._refused: dict[str, tuple[float, str, int, int]] = {}

    def revoked_key(self, key_id: uuid.UUID) -> str:
        return f"{self.prefix}revoked:{key_id}"

    def _ip_key(self, ip: str) -> str:
        return f"{self.prefix}authfail:{ip}"

    async def admit(
        self,
        *,
        org_id: uuid.UUID,
        key_id: uuid.UUID,
        ip: str,
        method: str,
        path: str,
        budgets: dict[str, int | None],
        check_revoked: bool,
    ) -> Verdict | None:
        """Spend one request of the org's and the key's budget for the request's category.
        None: no budget applies (the plan has no limit). Raises 429 ``RATE_LIMITED`` when a
        budget is spent and ``Revoked`` for a key revoked elsewhere."""
        cat = category(method, path)
        limit = budgets.get(cat)
        keys = [self.revoked_key(key_id) if check_revoked else "", self._ip_key(ip)]
        args: list[Any] = [self.auth_failures]
        scopes: list[str] = []
        if limit:
            buckets = self._buckets(org_id, key_id, cat)
            known = self._known(buckets)
            if known is not None:
                raise known
            keys += buckets
            args += [limit, 60_000, limit, 60_000]
            scopes = [f"per_org_{cat}", f"per_key_{cat}"]
        status, index, lim, value, reset_ms = await self._script(keys=keys, args=args)
        if status == -1:
            raise Revoked()
        if status == -2:
            raise too_many("per_ip_auth_failures", lim, value, reset_ms)
        if status == 0:
            self._remember(keys[1 + index], scopes[index - 1], lim, value, reset_ms)
            raise too_many(scopes[index - 1], lim, value, reset_ms)
        if not limit:
            return None
        return Verdict(int(lim), int(value), reset_at(int(reset_ms)))

    def _buckets(self, org_id: uuid.UUID, key_id: uuid.UUID, cat: str) -> list[str]:
        return [f"{self.prefix}rl:org:{org_id}:{cat}", f"{self.prefix}rl:key:{key_id}:{cat}"]

    def known_refusal(
        self, *, org_id: uuid.UUID, key_id: uuid.UUID, method: str, path: str, limited: bool
    ) -> ApiError | None:
        """The 429 this request gets for sure, without asking Redis (a bucket this process saw
        spent, still spent); None: ask."""
        if not limited or not self._refused:
            return None
        return self._known(self._buckets(org_id, key_id, category(method, path)))

    def _known(self, buckets: list[str]) -> ApiError | None:
        if not self._refused:
            return None
        now = time.monotonic()
        for bucket in buckets:
            memo = self._refused.get(bucket)
            if memo is None:
                continue
            until, scope, limit, reset_ms = memo
            if until <= now:
                self._refused.pop(bucket, None)
                continue
            left_ms = (until - now) * 1000
            return too_many(scope, limit, math.ceil(left_ms), max(reset_ms, math.ceil(left_ms)))
        return None

    def _remember(self, bucket: str, scope: str, limit: int, retry_ms: int, reset_ms: int) -> None:
        if len(self._refused) >= 10_000:
            self._refused.clear()
        self._refused[bucket] = (
            time.monotonic() + int(retry_ms) / 1000,
            scope,
            int(limit),
            int(reset_ms),
        )

    async def spend(self, buckets: Sequence[Bucket]) -> Verdict:
        """One request from each bucket (all or none), in one script call; raises 429
        ``RATE_LIMITED`` naming the first spent bucket's scope. For budgets outside the
        per-minute API categories (e.g. mail one address or recipient may cause)."""
        keys = ["", ""]
        args: list[Any] = [0]
        for b in buckets:
            keys.append(f"{self.prefix}rl:{b.key}")
            args += [b.limit, b.period_ms]
        status, index, lim, value, reset_ms = await self._script(keys=keys, args=args)
        if status == 0:
            raise too_many(buckets[index - 1].scope, lim, value, reset_ms)
        return Verdict(int(lim), int(value), reset_at(int(reset_ms)))

    async def failed(self, ip: str) -> None:
        """One failed authentication from ``ip``; past the per-minute allowance it is a 429."""
        if self.auth_failures <= 0:
            return
        n = int(await self._fail(keys=[self._ip_key(ip)], args=[60_000]))
        if n > self.auth_failures:
            raise too_many("per_ip_auth_failures", self.auth_failures, 60_000, 60_000)

    async def mark_revoked(self, key_id: uuid.UUID, ttl_secs: int) -> None:
        await self.redis.set(self.revoked_key(key_id), b"1", ex=ttl_secs)


async def broadcast_revocation(redis: Redis, settings: Any, key_id: uuid.UUID) -> None:
    """Tell every API process that ``key_id`` is revoked (for longer than any remembers it);
    the CLI uses it, the API through ``Limiter.mark_revoked``."""
    ttl = int(settings.accounts.key_cache_secs) + 5
    await redis.set(f"{settings.redis.prefix}revoked:{key_id}", b"1", ex=ttl)


def reset_at(reset_ms: int) -> int:
    return math.ceil(time.time() + reset_ms / 1000)


def too_many(scope: str, limit: int, retry_ms: int, reset_ms: int) -> ApiError:
    retry = max(1, math.ceil(int(retry_ms) / 1000))
    verdict = Verdict(int(limit), 0, reset_at(int(reset_ms)))
    return ApiError(
        429,
        "RATE_LIMITED",
        f"rate budget {scope} is spent; retry in {retry} s",
        details={"scope": scope, "limit": int(limit), "retry_after_secs": retry},
        headers={"Retry-After": str(retry), **verdict.headers()},
    )


PENDING_KEY = "vigil_ratelimit_pending"


class Pending:
    """A read's verdict still on its way from Redis (``core/auth.py`` lets a GET, HEAD or
    OPTIONS with a remembered key run while the limiter's script runs): the answer is held at
    its first byte until the verdict is in; a refusal (429, or 401 for a key revoked elsewhere)
    replaces it, so nothing the handler read leaves the process. ``on_wait`` is told how long
    the answer waited (the limiter's cost as the API sees it)."""

    __slots__ = ("on_wait", "task")

    def __init__(self, task: asyncio.Future[Any], on_wait: Callable[[float], None]) -> None:
        self.task = task
        self.on_wait = on_wait

    async def settle(self) -> Any:
        started = time.perf_counter()
        try:
            return await self.task
        finally:
            self.on_wait(time.perf_counter() - started)


def _error_messages(scope: Any, exc: ApiError) -> tuple[dict[str, Any], dict[str, Any]]:
    from control_plane.core.cache_control import cache_control_for
    from control_plane.core.errors import ErrorBody, ErrorEnvelope

    request_id = scope.get("state", {}).get("request_id")
    body = msgspec.json.encode(
        ErrorEnvelope(
            ErrorBody(
                exc.code,
                exc.message,
                exc.field,
                exc.details,
                str(request_id) if request_id else None,
            )
        )
    )
    headers = {
        **exc.headers,
        "Cache-Control": cache_control_for(scope.get("method", "GET"), scope["path"]),
        "content-type": "application/json",
        "content-length": str(len(body)),
    }
    start = {
        "type": "http.response.start",
        "status": exc.status,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    return start, {"type": "http.response.body", "body": body, "more_body": False}


def headers_middleware(app: Any) -> Any:
    """Copy the request's rate verdict into ``X-RateLimit-*`` on its answer (errors too); for
    a read whose verdict is still pending (``Pending``), wait for it at the answer's first byte
    and answer its refusal instead of the handler's answer."""

    async def middleware(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/v1/"):
            await app(scope, receive, send)
            return
        replaced = False

        async def send_with_headers(message: Any) -> None:
            nonlocal replaced
            if replaced:
                return  # the handler's answer, replaced by the limiter's refusal
            if message["type"] == "http.response.start":
                state = scope.get("state", {})
                pending = state.pop(PENDING_KEY, None)
                if isinstance(pending, Pending):
                    outcome = await pending.settle()
                    if isinstance(outcome, ApiError):
                        replaced = True
                        for refusal in _error_messages(scope, outcome):
                            await send(refusal)
                        return
                    if isinstance(outcome, Verdict):
                        state[STATE_KEY] = outcome
                verdict = state.get(STATE_KEY)
                if isinstance(verdict, Verdict):
                    present = {k.lower() for k, _ in message.get("headers", [])}
                    extra = [
                        (k.lower().encode(), v.encode())
                        for k, v in verdict.headers().items()
                        if k.lower().encode() not in present
                    ]
                    message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await app(scope, receive, send_with_headers)
        finally:
            pending = scope.get("state", {}).pop(PENDING_KEY, None)
            if isinstance(pending, Pending) and not pending.task.done():
                pending.task.cancel()

    return middleware
