"""/api/heartbeat/{token}: where monitored jobs report. No auth: the token in the URL is the key.

``GET`` and ``POST`` alike (cron lines use either): the bare path is a ping, ``/start`` marks a run
as begun (the next ping records its duration), ``/fail`` reports a failure whose body (first KiB)
becomes the result's error. Every answer is ``{"ok": true}``; an unknown token is a 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Controller, HttpMethod, Request, route
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.status_codes import HTTP_200_OK

from control_plane.core.service import provide

from .schemas import PingAck
from .service import HeartbeatReceiver

_METHODS = [HttpMethod.GET, HttpMethod.POST]


def _operation_id(name: str) -> Callable[..., str]:
    def make(_handler: Any, method: Any, _path: Any) -> str:
        return f"{name}{str(method).title()}"

    return make


class HeartbeatController(Controller):
    path = "/api/heartbeat"
    tags = ["heartbeats"]
    cache_control = CacheControlHeader(no_store=True)
    dependencies = {"receiver": provide(HeartbeatReceiver)}

    @route(
        "/{token:str}",
        http_method=_METHODS,
        operation_id=_operation_id("heartbeatPing"),
        status_code=HTTP_200_OK,
    )
    async def ping(
        self, receiver: NamedDependency[HeartbeatReceiver], token: FromPath[str]
    ) -> PingAck:
        """The job ran: record an ``up`` result (with the run's duration after a ``/start``)."""
        await receiver.receive(token, "ping")
        return PingAck()

    @route(
        "/{token:str}/start",
        http_method=_METHODS,
        operation_id=_operation_id("heartbeatStart"),
        status_code=HTTP_200_OK,
    )
    async def start(
        self, receiver: NamedDependency[HeartbeatReceiver], token: FromPath[str]
    ) -> PingAck:
        """A run began: the next ping or failure records how long it took."""
        await receiver.receive(token, "start")
        return PingAck()

    @route(
        "/{token:str}/fail",
        http_method=_METHODS,
        operation_id=_operation_id("heartbeatFail"),
        status_code=HTTP_200_OK,
    )
    async def fail(
        self,
        request: Request[Any, Any, Any],
        receiver: NamedDependency[HeartbeatReceiver],
        token: FromPath[str],
    ) -> PingAck:
        """The job failed: record a ``down`` result; the body's first KiB is its error."""
        body = await request.body()
        await receiver.receive(token, "fail", body)
        return PingAck()
