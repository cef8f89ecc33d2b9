"""The one shape of a service, and how handlers get theirs.

Every service is built the same way, ``SomeService(resources, caller)``: the process resources
(pool, Redis, sealer, settings, queue) and who is calling (an ``OrgContext`` on ``/api/v1``, an
``AgentContext`` on ``/api/agent``, None for the operator and the public surfaces). A service
takes a pooled connection on its first ``await self.conn()`` and gives it back when it is closed,
so a handler that never touches the database never holds one, and a long wait (an on-demand
check) can borrow connections for short spells instead.

Handlers never build services: a controller declares ``dependencies = {"targets":
provide(TargetService)}`` and the handler takes ``targets: TargetService``; the provider closes
the service when the request is done (as litestar-fullstack's ``provide_service`` does).
Outside a request (the CLI, the worker, tests) a service is an async context manager.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncGenerator
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from litestar.connection import ASGIConnection
from litestar.di import Provide
from psycopg import AsyncConnection

from control_plane.core import audit
from control_plane.core.audit import Actor, RequestMeta
from control_plane.core.auth import AgentContext, OrgContext, caller_of, resources
from control_plane.core.state import Resources
from control_plane.security.sealing import Sealer
from control_plane.settings import Settings

S = TypeVar("S", bound="Service")
Caller = OrgContext | AgentContext | None


class Service:
    def __init__(
        self, res: Resources, caller: Caller = None, meta: RequestMeta | None = None
    ) -> None:
        self.res = res
        self.caller = caller
        # Where the request came to, its id and its source (links, the audit log).
        self.meta = meta or RequestMeta()
        self._lease: AbstractAsyncContextManager[AsyncConnection[Any]] | None = None
        self._conn: AsyncConnection[Any] | None = None

    @property
    def settings(self) -> Settings:
        return self.res.settings

    @property
    def public_url(self) -> str:
        """The base of the links this service hands out (heartbeat URLs, …): the deployment's
        ``VIGIL_PUBLIC_URL``, else the origin of the request, without a trailing slash."""
        return (self.settings.api.public_url or self.meta.origin).rstrip("/")

    @property
    def sealer(self) -> Sealer:
        return self.res.sealer

    async def conn(self) -> AsyncConnection[Any]:
        """This service's pooled connection, taken on first use (autocommit; open a
        ``conn.transaction()`` for several statements that must hold together)."""
        if self._conn is None:
            lease = self.res.db.connection()
            self._conn = await lease.__aenter__()
            self._lease = lease
        return self._conn

    async def close(self) -> None:
        lease, self._lease, self._conn = self._lease, None, None
        if lease is not None:
            await lease.__aexit__(None, None, None)

    async def __aenter__(self: S) -> S:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()


class TenantService(Service):
    """A service of ``/api/v1``: every query it runs is scoped to the calling org."""

    @property
    def org(self) -> OrgContext:
        assert isinstance(self.caller, OrgContext), "a tenant service needs the calling org"
        return self.caller

    @property
    def actor(self) -> Actor:
        if self.org.actor_type == "session":
            return Actor("session", self.org.user_id)
        return Actor("api_key", self.org.token_id)

    async def audit(
        self,
        conn: AsyncConnection[Any],
        action: str,
        resource_type: str,
        resource_id: Any = None,
        *,
        before: Any = None,
        after: Any = None,
    ) -> None:
        """Record a mutation in the audit log, in ``conn``'s current transaction (call it inside
        the transaction that makes the change). ``before``/``after``: API read shapes."""
        await audit.record(
            conn,
            org_id=self.org.org_id,
            actor=self.actor,
            meta=self.meta,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            before=before,
            after=after,
        )


def _ip(host: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(host or ""))
    except ValueError:  # a unix socket, a test client's made-up name
        return None


def request_meta(request: ASGIConnection[Any, Any, Any, Any]) -> RequestMeta:
    client = request.client
    return RequestMeta(
        origin=f"{request.url.scheme}://{request.url.netloc}",
        request_id=request.scope.get("state", {}).get("request_id"),
        source_ip=_ip(client.host if client else None),
    )


def provide(cls: type[S]) -> Provide:
    """The Litestar dependency that hands a handler its ``cls`` service for the request."""

    async def provider(request: ASGIConnection[Any, Any, Any, Any]) -> AsyncGenerator[Any, None]:
        service = cls(resources(request), caller_of(request), request_meta(request))
        try:
            yield service
        finally:
            await service.close()

    return Provide(provider)
