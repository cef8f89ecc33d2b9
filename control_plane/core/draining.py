"""Draining: the process was asked to stop, so requests that wait (lease long-polls) end now.

uvicorn stops accepting connections on SIGTERM/SIGINT but waits for requests in flight, and a
lease long-poll waits up to 30 s for work: a stopping API would hang on every agent's open
poll. The app's lifespan chains a handler onto uvicorn's for both signals that sets
``Draining.event`` (on the event loop); waiting requests watch it and answer at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Draining:
    def __init__(self) -> None:
        self.event = asyncio.Event()

    @property
    def is_set(self) -> bool:
        return self.event.is_set()

    @contextlib.contextmanager
    def on_signals(self) -> Iterator[None]:
        """While the app runs: SIGTERM/SIGINT set the event, then do what they did before.
        Only the main thread may install handlers (a test client runs the app elsewhere)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        previous: dict[int, Any] = {}

        def handler(signum: int, frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(self.event.set)
            before = previous.get(signum)
            if callable(before):
                before(signum, frame)
            elif before == signal.SIG_DFL and signum == signal.SIGINT:
                raise KeyboardInterrupt

        for sig in SIGNALS:
            previous[int(sig)] = signal.signal(sig, handler)
        try:
            yield
        finally:
            for signum, before in previous.items():
                with contextlib.suppress(ValueError, TypeError):
                    signal.signal(signum, before)
