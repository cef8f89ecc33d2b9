"""One Redis subscription per API process, fanned out in process to the live-stream clients.

Every SSE and WebSocket client of a process joins the process's ``Hub``; the hub holds one
pattern subscription (``<prefix>events:*``), decodes each event once and offers it to the
bounded queue of each client of that org. A client whose queue is full is marked ``overflowed``
(its handler drops it); if the subscription fails, every client is marked ``failed`` (they
reconnect) and the hub subscribes again.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
import structlog
from litestar import Litestar
from redis.asyncio import Redis

from control_plane.settings import RedisSettings

log = structlog.get_logger("vigil.events")

MAX_PENDING = 256
RETRY_S = 1.0
READY_TIMEOUT_S = 10.0
_STATE_KEY = "event_hub"


class Subscriber:
    def __init__(self, org_key: str, prefixes: tuple[str, ...]) -> None:
        self.org_key = org_key
        self.prefixes = prefixes
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(MAX_PENDING)
        # Set when the client should go: it fell MAX_PENDING behind, or the subscription failed.
        self.done = asyncio.Event()
        self.overflowed = False

    def offer(self, type_: str, data: bytes) -> None:
        if self.done.is_set() or not type_.startswith(self.prefixes):
            return
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            self.overflowed = True
            self.done.set()


class Hub:
    def __init__(self, redis: Redis, settings: RedisSettings) -> None:
        self._redis = redis
        self._head = f"{settings.prefix}events:"
        self._subs: dict[str, set[Subscriber]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def join(self, org_id: Any, prefixes: tuple[str, ...]) -> Subscriber:
        """A new client of the org; returns once the hub's subscription is live."""
        sub = Subscriber(str(org_id), prefixes)
        self._subs.setdefault(sub.org_key, set()).add(sub)
        if self._task is None or self._task.done():
            self._ready = asyncio.Event()
            self._task = asyncio.create_task(self._run())
        try:
            await asyncio.wait_for(self._ready.wait(), READY_TIMEOUT_S)
        except BaseException:
            self.leave(sub)
            raise
        return sub

    def leave(self, sub: Subscriber) -> None:
        subs = self._subs.get(sub.org_key)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.org_key]

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def _run(self) -> None:
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.psubscribe(f"{self._head}*")
                self._ready.set()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=30)
                    if message is None:
                        continue
                    self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("event_hub_subscription_failed", error=str(exc))
                for subs in self._subs.values():
                    for sub in subs:
                        sub.done.set()
                await asyncio.sleep(RETRY_S)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _dispatch(self, message: dict[str, Any]) -> None:
        name = message["channel"]
        name = name.decode() if isinstance(name, bytes) else str(name)
        subs = self._subs.get(name.removeprefix(self._head))
        if not subs:
            return
        data: bytes = message["data"]
        try:
            type_ = str(msgspec.json.decode(data).get("type", ""))
        except (msgspec.DecodeError, AttributeError):
            return
        for sub in list(subs):
            sub.offer(type_, data)


def hub_of(app: Litestar) -> Hub:
    """The app's hub (one per process and app), made on first use."""
    hub: Hub | None = app.state.get(_STATE_KEY)
    if hub is None:
        res = app.state.resources
        hub = Hub(res.redis, res.settings.redis)
        app.state[_STATE_KEY] = hub
    return hub


async def close_hub(app: Litestar) -> None:
    """On shutdown: stop the hub's subscription (a restarted app makes a new one)."""
    hub: Hub | None = app.state.pop(_STATE_KEY, None)
    if hub is not None:
        await hub.close()
