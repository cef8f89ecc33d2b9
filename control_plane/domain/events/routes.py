"""GET /api/v1/events/stream: the org's incident events as Server-Sent Events."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from typing import Any

import msgspec
from litestar import Controller, Request, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from control_plane.core.auth import OrgContext, caller_of, resources
from control_plane.core.errors import ApiError
from control_plane.core.permissions import requires

from .stream import EVENT_TYPES, channel

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
        client. A client that cannot keep up is disconnected by Redis's pub/sub output limit
        rather than buffered without bound; reconnect and read ``/api/v1/incidents`` to catch
        up."""
        caller = caller_of(request)
        if not isinstance(caller, OrgContext):
            raise ApiError(401, "UNAUTHORIZED", "missing or invalid bearer token")
        wanted = set(types.split(",")) if types else set(EVENT_TYPES)
        res = resources(request)
        name = channel(res.settings.redis, caller.org_id)

        async def events() -> AsyncGenerator[ServerSentEventMessage, None]:
            pubsub = res.redis.pubsub()
            try:
                await pubsub.subscribe(name)
                yield ServerSentEventMessage(comment="subscribed", data=None)
                while True:
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=KEEPALIVE_S
                    )
                    if message is None:
                        yield ServerSentEventMessage(comment="keepalive", data=None)
                        continue
                    raw = message["data"]
                    event = msgspec.json.decode(raw)
                    if event.get("type") not in wanted:
                        continue
                    yield ServerSentEventMessage(
                        data=raw.decode() if isinstance(raw, bytes) else str(raw),
                        event=event["type"],
                        id=str(event["id"]),
                    )
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]

        return ServerSentEvent(events())
