"""GET /api/v1/events/stream: the org's incident events as Server-Sent Events."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator
from typing import Any

import msgspec
from litestar import Controller, Request, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from control_plane.core.auth import OrgContext, caller_of
from control_plane.core.errors import ApiError
from control_plane.core.permissions import requires

from .hub import hub_of
from .stream import EVENT_TYPES

# Without an event for this long the stream sends a comment, so proxies keep it open and a
# client that went away is noticed.
KEEPALIVE_S = 15.0
_TYPES = "(" + "|".join(re.escape(t) for t in EVENT_TYPES) + ")"


class EventStreamController(Controller):
    path = "/events"
    tags = ["events"]

    @get(
        "/stream",
        operation_id="streamEvents",
        opt=requires("incidents:read"),
        media_type="text/event-stream",
        responses={
            200: ResponseSpec(
                data_container=str,
                media_type="text/event-stream",
                generate_examples=False,
                description="a stream of `event:`/`id:`/`data:` messages; `data` is the JSON "
                "event {id, type, org_id, occurred_at, data}",
            )
        },
    )
    async def stream(
        self,
        request: Request[Any, Any, Any],
        types: str | None = Parameter(
            default=None,
            max_length=500,
            pattern=f"^{_TYPES}(,{_TYPES})*$",
            description="comma-separated event types to receive (default: all): "
            + ", ".join(EVENT_TYPES),
        ),
    ) -> ServerSentEvent:
        """The org's incident events as they happen (``event:`` the type, ``id:`` the event's
        stable id, ``data:`` the JSON event). Fanned out through Redis: any replica serves any
        client. A client that falls 256 events behind is disconnected rather than buffered
        without bound; reconnect and read ``/api/v1/incidents`` to catch up."""
        caller = caller_of(request)
        if not isinstance(caller, OrgContext):
            raise ApiError(401, "UNAUTHORIZED", "missing or invalid bearer token")
        wanted = tuple(types.split(",")) if types else EVENT_TYPES
        hub = hub_of(request.app)
        org_id = caller.org_id

        async def events() -> AsyncGenerator[ServerSentEventMessage, None]:
            sub = await hub.join(org_id, wanted)
            try:
                yield ServerSentEventMessage(comment="subscribed", data=None)
                while not sub.done.is_set():
                    try:
                        raw = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_S)
                    except TimeoutError:
                        yield ServerSentEventMessage(comment="keepalive", data=None)
                        continue
                    event = msgspec.json.decode(raw)
                    yield ServerSentEventMessage(
                        data=raw.decode(), event=event["type"], id=str(event["id"])
                    )
            finally:
                hub.leave(sub)

        return ServerSentEvent(events())
