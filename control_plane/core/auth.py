"""Authentication for the three surfaces.

- ``/api/v1``: ``Authorization: Bearer vgl_…`` API token -> ``OrgContext``.
- ``/operator``: the static ``VIGIL_OPERATOR_ADMIN_TOKEN``; the surface is 404 when it is unset.
- ``/api/agent``: ``Authorization: Bearer sm_agent_…`` -> ``AgentContext`` (region from the token).
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from control_plane.core.errors import ApiError
from control_plane.core.state import Resources
from control_plane.db.sql import Queries
from control_plane.security import tokens

Q = Queries.beside(__file__, "auth")


@dataclass(frozen=True, slots=True)
class OrgContext:
    org_id: uuid.UUID
    token_id: uuid.UUID
    min_interval_secs: int
    # What the caller may do (core/permissions.py); None: everything (a full-access key).
    permissions: frozenset[str] | None = None


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


async def provide_org(request: ASGIConnection[Any, Any, Any, Any]) -> OrgContext:
    """Dependency for every /api/v1 route: resolves the calling org from its API token."""
    token = bearer(request)
    prefix = tokens.lookup_prefix(token, tokens.API_TOKEN_PREFIX)
    if prefix is None:
        raise unauthorized()
    res = resources(request)
    async with res.db.connection() as conn:
        row = await (await conn.execute(Q.api_token_by_prefix, {"prefix": prefix})).fetchone()
        if row is None or not tokens.verify(res.settings.security.token_key, token, row["hash"]):
            raise unauthorized()
        if row["stale"]:
            await conn.execute(Q.touch_api_token, {"id": row["id"]})
    ctx = OrgContext(
        org_id=row["org_id"],
        token_id=row["id"],
        min_interval_secs=row["min_check_interval_secs"]
        or res.settings.api.default_min_interval_secs,
        permissions=None if row["permissions"] is None else frozenset(row["permissions"]),
    )
    structlog.contextvars.bind_contextvars(org_id=str(ctx.org_id))
    request.scope["state"]["org_id"] = str(ctx.org_id)
    return ctx


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
