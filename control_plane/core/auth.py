"""Authentication for the three surfaces.

- ``/api/v1``: ``Authorization: Bearer vgl_…`` API token -> ``OrgContext``.
- ``/operator``: the static ``VIGIL_OPERATOR_ADMIN_TOKEN``; the surface is 404 when it is unset.
- ``/api/agent``: ``Authorization: Bearer sm_agent_…`` -> ``AgentContext`` (region from the token).
"""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.handlers.base import BaseRouteHandler
from redis.exceptions import RedisError

from control_plane.core.errors import ApiError
from control_plane.core.keycache import CachedKey
from control_plane.core.ratelimit import (
    CATEGORIES,
    PENDING_KEY,
    STATE_KEY,
    Limiter,
    Pending,
    Revoked,
    Verdict,
)
from control_plane.core.state import Resources
from control_plane.db.sql import Queries
from control_plane.security import tokens

Q = Queries.beside(__file__, "auth")
log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class OrgContext:
    org_id: uuid.UUID
    token_id: uuid.UUID
    min_interval_secs: int
    # What the caller may do (core/permissions.py); None: everything (a full-access key).
    permissions: frozenset[str] | None = None
    # "api_key", or "session" for a signed-in user (``token_id`` is then the session).
    actor_type: str = "api_key"
    user_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class AgentContext:
    agent_id: uuid.UUID
    region_id: str
    name: str


def unauthorized(message: str = "missing or invalid bearer token") -> ApiError:
    return ApiError(401, "UNAUTHORIZED", message, headers={"WWW-Authenticate": "Bearer"})


def bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    header = connection.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise unauthorized()
    return value.strip()


def resources(connection: ASGIConnection[Any, Any, Any, Any]) -> Resources:
    res: Resources = connection.app.state.resources
    return res


def client_ip(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    client = connection.client
    return (client.host if client else None) or "unknown"


def limiter_of(res: Resources) -> Limiter:
    if res.limiter is None:
        res.limiter = Limiter(
            res.redis, res.settings.redis.prefix, res.settings.accounts.auth_failures_per_minute
        )
    return res.limiter


async def count_failure(res: Resources, ip: str) -> None:
    """A failed authentication, counted against the address (a 429 past its allowance)."""
    try:
        await limiter_of(res).failed(ip)
    except RedisError:
        log.warning("auth_failure_not_counted", reason="redis unavailable")


async def _refuse(
    res: Resources, ip: str, message: str = "missing or invalid bearer token"
) -> None:
    await count_failure(res, ip)
    raise unauthorized(message)


async def _lookup(res: Resources, token: str, prefix: str, digest: bytes) -> CachedKey | str:
    """The key from the database, or why it is refused."""
    async with res.db.connection() as conn:
        row = await (await conn.execute(Q.api_token_by_prefix, {"prefix": prefix})).fetchone()
        if row is None or not hmac.compare_digest(digest, bytes(row["hash"])):
            return "missing or invalid bearer token"
        if row["expired"]:
            return "this API key has expired"
        if row["stale"]:
            await conn.execute(Q.touch_api_token, {"id": row["id"]})
    ctx = OrgContext(
        org_id=row["org_id"],
        token_id=row["id"],
        min_interval_secs=row["min_check_interval_secs"]
        or res.settings.api.default_min_interval_secs,
        permissions=None if row["permissions"] is None else frozenset(row["permissions"]),
    )
    budgets = {c: row[f"rate_{c}"] for c in CATEGORIES}
    fresh = time.monotonic() + res.settings.accounts.key_cache_secs
    return CachedKey(ctx, budgets, row["expires_at"], fresh)


# What the limiter's one Redis call costs a request, as the API sees it (``make bench
# SCENARIO=accounts`` reads it from a served process); buckets fine below a millisecond.
LIMITER_BUCKETS = (0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1)


async def _spend(
    request: ASGIConnection[Any, Any, Any, Any],
    res: Resources,
    *,
    org_id: uuid.UUID,
    key_id: uuid.UUID,
    ip: str,
    method: str,
    budgets: dict[str, int | None],
    check_revoked: bool,
    waited: bool = True,
) -> Verdict | None:
    """One request of the caller's budgets (``Limiter.admit``), timed into
    ``vigil_ratelimit_call_seconds`` and, when the request waits for it before its handler
    runs (``waited``), ``vigil_ratelimit_wait_seconds`` too."""
    started = time.perf_counter()
    try:
        return await limiter_of(res).admit(
            org_id=org_id,
            key_id=key_id,
            ip=ip,
            method=method,
            path=request.scope["path"],
            budgets=budgets,
            check_revoked=check_revoked,
        )
    finally:
        elapsed = time.perf_counter() - started
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None:
            metrics.histogram(
                "vigil_ratelimit_call_seconds",
                "duration of the rate limiter's one Redis script call",
                buckets=LIMITER_BUCKETS,
            ).observe(elapsed)
            if waited:
                _wait_observer(request)(elapsed)


def _wait_observer(request: ASGIConnection[Any, Any, Any, Any]) -> Callable[[float], None]:
    """Records how long an /api/v1 request waited for the limiter (the whole call, or for an
    overlapped read what was left of it when its answer was ready)."""
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is None:
        return lambda _: None
    wait: Callable[[float], None] = metrics.histogram(
        "vigil_ratelimit_wait_seconds",
        "time an /api/v1 request waited for the rate limiter's verdict",
        buckets=LIMITER_BUCKETS,
    ).observe
    return wait


async def provide_org(request: ASGIConnection[Any, Any, Any, Any]) -> OrgContext:
    """Dependency for every /api/v1 route: resolves the calling org from its API key, then
    spends one request of its rate budget (core/ratelimit.py)."""
    res = resources(request)
    ip = client_ip(request)
    header = request.headers.get("authorization", "")
    if not header and request.cookies.get(SESSION_COOKIE):
        return await _session_org(request, res, ip)
    scheme, _, value = header.partition(" ")
    token = value.strip()
    prefix = (
        tokens.lookup_prefix(token, tokens.API_TOKEN_PREFIX) if scheme.lower() == "bearer" else None
    )
    if prefix is None:
        await _refuse(res, ip)
    digest = tokens.token_hash(res.settings.security.token_key, token)
    entry = res.key_cache.get(digest) if res.settings.accounts.key_cache_secs > 0 else None
    cached = entry is not None
    if entry is None:
        found = await _lookup(res, token, str(prefix), digest)
        if isinstance(found, str):
            await _refuse(res, ip, found)
            raise AssertionError("unreachable")
        entry = found
        if res.settings.accounts.key_cache_secs > 0:
            res.key_cache.put(digest, entry)
    elif entry.expired():
        res.key_cache.drop(digest)
        await _refuse(res, ip, "this API key has expired")
    ctx: OrgContext = entry.ctx
    method = str(request.scope.get("method", "GET")).upper()
    if (
        cached
        and method in SAFE_METHODS
        and request.scope["type"] == ScopeType.HTTP  # a websocket has no answer to hold back
        and res.settings.accounts.rate_limit_overlap_reads
    ):
        # A read with a remembered key runs while the limiter's script does; its answer waits
        # at its first byte for the verdict (core/ratelimit.py ``Pending``), so the script's
        # round trip overlaps the handler's own work instead of coming before it.
        limiter = limiter_of(res)
        known = limiter.known_refusal(
            org_id=ctx.org_id,
            key_id=ctx.token_id,
            method=method,
            path=request.scope["path"],
            limited=any(entry.budgets.values()),
        )
        if known is not None:
            raise known
        task = asyncio.ensure_future(
            _verdict_later(request, res, ctx, entry, token, str(prefix), digest, ip, method)
        )
        request.scope["state"][PENDING_KEY] = Pending(task, _wait_observer(request))
        structlog.contextvars.bind_contextvars(org_id=str(ctx.org_id))
        request.scope["state"]["org_id"] = str(ctx.org_id)
        return ctx
    try:
        verdict = await _spend(
            request,
            res,
            org_id=ctx.org_id,
            key_id=ctx.token_id,
            ip=ip,
            method=str(request.scope.get("method", "GET")),
            budgets=entry.budgets,
            check_revoked=cached,
        )
    except Revoked:
        res.key_cache.drop(digest)
        await _refuse(res, ip)
        raise AssertionError("unreachable") from None
    except RedisError:
        # Redis down: no budget can be checked (fail open), and a remembered key cannot be
        # checked for revocation: look it up again.
        log.warning("rate_limit_skipped", reason="redis unavailable")
        verdict = None
        if cached:
            res.key_cache.drop(digest)
            found = await _lookup(res, token, str(prefix), digest)
            if isinstance(found, str):
                raise unauthorized(found) from None
            ctx = found.ctx
    if verdict is not None:
        request.scope["state"][STATE_KEY] = verdict
    structlog.contextvars.bind_contextvars(org_id=str(ctx.org_id))
    request.scope["state"]["org_id"] = str(ctx.org_id)
    return ctx


async def _verdict_later(
    request: ASGIConnection[Any, Any, Any, Any],
    res: Resources,
    ctx: OrgContext,
    entry: CachedKey,
    token: str,
    prefix: str,
    digest: bytes,
    ip: str,
    method: str,
) -> Verdict | ApiError | None:
    """``provide_org``'s verdict for an overlapped read, as a value: the refusal to answer
    instead of the handler's answer (429, or 401 for a key revoked elsewhere), else the
    headers' verdict."""
    try:
        return await _spend(
            request,
            res,
            org_id=ctx.org_id,
            key_id=ctx.token_id,
            ip=ip,
            method=method,
            budgets=entry.budgets,
            check_revoked=True,
            waited=False,
        )
    except ApiError as exc:
        return exc
    except Revoked:
        res.key_cache.drop(digest)
        await count_failure(res, ip)
        return unauthorized()
    except RedisError:
        log.warning("rate_limit_skipped", reason="redis unavailable")
        res.key_cache.drop(digest)
        found = await _lookup(res, token, prefix, digest)
        return unauthorized(found) if isinstance(found, str) else None


SESSION_COOKIE = "vigil_session"
CSRF_COOKIE = "vigil_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _session_org(
    request: ASGIConnection[Any, Any, Any, Any], res: Resources, ip: str
) -> OrgContext:
    """A signed-in browser: the session cookie names the user and the org they work in; an
    unsafe method must repeat the session's CSRF token in ``X-CSRF-Token``."""
    from control_plane.core.roles import permissions_of_role

    token = request.cookies.get(SESSION_COOKIE, "")
    digest = tokens.token_hash(res.settings.security.token_key, token)
    async with res.db.connection() as conn:
        row = await (await conn.execute(Q.session_by_hash, {"hash": digest})).fetchone()
    if row is None:
        await _refuse(res, ip, "no such session: sign in again")
        raise AssertionError("unreachable")
    method = str(request.scope.get("method", "GET")).upper()
    if method not in SAFE_METHODS and not hmac.compare_digest(
        request.headers.get(CSRF_HEADER, "").encode(), str(row["csrf_token"]).encode()
    ):
        raise ApiError(
            403,
            "CSRF_FAILED",
            "a signed-in request that changes something must carry the X-CSRF-Token header",
        )
    if row["role"] is None:
        raise ApiError(403, "NO_ACTIVE_ORG", "select an org you are a member of first")
    ctx = OrgContext(
        org_id=row["org_id"],
        token_id=row["id"],
        min_interval_secs=row["min_check_interval_secs"]
        or res.settings.api.default_min_interval_secs,
        permissions=permissions_of_role(row["role"]),
        actor_type="session",
        user_id=row["user_id"],
    )
    try:
        verdict = await _spend(
            request,
            res,
            org_id=ctx.org_id,
            key_id=row["user_id"],
            ip=ip,
            method=method,
            budgets={c: row[f"rate_{c}"] for c in CATEGORIES},
            check_revoked=False,
        )
    except RedisError:
        log.warning("rate_limit_skipped", reason="redis unavailable")
        verdict = None
    if verdict is not None:
        request.scope["state"][STATE_KEY] = verdict
    structlog.contextvars.bind_contextvars(org_id=str(ctx.org_id))
    request.scope["state"]["org_id"] = str(ctx.org_id)
    return ctx


async def revoke_cached(res: Resources, key_id: uuid.UUID) -> None:
    """After a key's revocation commits: forget it here and tell every replica (the marker
    outlives any replica's memory of the key)."""
    res.key_cache.drop_key(key_id)
    try:
        await limiter_of(res).mark_revoked(key_id, int(res.settings.accounts.key_cache_secs) + 5)
    except RedisError:
        log.error("revocation_not_broadcast", key_id=str(key_id))


async def provide_agent(request: ASGIConnection[Any, Any, Any, Any]) -> AgentContext:
    """Dependency for /api/agent routes; every authenticated call marks the agent as seen."""
    token = bearer(request)
    prefix = tokens.lookup_prefix(token, tokens.AGENT_TOKEN_PREFIX)
    if prefix is None:
        raise unauthorized("missing or invalid agent token")
    res = resources(request)
    async with res.db.connection() as conn:
        row = await (await conn.execute(Q.agent_by_prefix, {"prefix": prefix})).fetchone()
        if row is None or not tokens.verify(res.settings.security.token_key, token, row["hash"]):
            raise unauthorized("missing or invalid agent token")
        await conn.execute(Q.touch_agent, {"id": row["id"]})
    structlog.contextvars.bind_contextvars(agent_id=str(row["id"]), region=row["region_id"])
    request.scope["state"].update(agent_id=str(row["id"]), region=row["region_id"])
    return AgentContext(
        agent_id=row["id"],
        region_id=row["region_id"],
        name=row["name"],
    )


def operator_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    expected = resources(connection).settings.security.operator_admin_token
    if expected is None:
        # The operator surface does not exist on this deployment.
        raise ApiError(404, "NOT_FOUND", "no such route or resource")
    header = connection.headers.get("authorization", "")
    scheme, _sep, value = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        value.strip().encode(), expected.encode()
    ):
        raise unauthorized("missing or invalid operator token")


# Guards run before Litestar reads a body, dependencies after: authenticating in a guard makes a
# bad token 401 whatever the body holds. The dependency then hands the context to the handler.
ORG_KEY = "vigil_org"
_AGENT_KEY = "vigil_agent"


async def org_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    connection.scope["state"][ORG_KEY] = await provide_org(connection)


def authenticated_org(request: Request[Any, Any, Any]) -> OrgContext:
    org: OrgContext = request.scope["state"][ORG_KEY]
    return org


async def agent_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    connection.scope["state"][_AGENT_KEY] = await provide_agent(connection)


def authenticated_agent(request: Request[Any, Any, Any]) -> AgentContext:
    agent: AgentContext = request.scope["state"][_AGENT_KEY]
    return agent


def caller_of(connection: ASGIConnection[Any, Any, Any, Any]) -> OrgContext | AgentContext | None:
    """Who the guards authenticated for this request: an org, an agent, or nobody (the operator
    and public surfaces)."""
    state = connection.scope["state"]
    caller: OrgContext | AgentContext | None = state.get(ORG_KEY) or state.get(_AGENT_KEY)
    return caller
