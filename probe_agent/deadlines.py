"""Timeouts for thousands of concurrent checks without a loop timer per check.

``asyncio.timeout`` schedules one timer per use and cancels it when the block ends early, as a
check's timeout nearly always does; at thousands of checks a second, pushing those timers onto
the loop's heap and sifting the cancelled ones out costs about as much CPU as everything else
the agent does for a check besides the network. ``deadline(seconds)`` rounds each deadline up to
the next ``TICK`` and shares one timer among all deadlines that fall on the same tick, so a
deadline fires at most ``TICK`` late. Otherwise it behaves like ``asyncio.timeout``: when it
expires the task is cancelled and the block raises ``TimeoutError``; a cancellation from
elsewhere still comes out as ``CancelledError``.

    with deadline(check.timeout / 1000):
        await probe()
"""

from __future__ import annotations

import asyncio
import math
import weakref
from types import TracebackType

# Deadlines are rounded up to a multiple of this many seconds (the timers of one loop share).
TICK = 0.01


class Deadline:
    """A ``with`` block that raises ``TimeoutError`` if it runs longer than ``delay`` seconds.

    Enter it only inside a task (it cancels that task); each use needs a new ``Deadline``.
    """

    __slots__ = ("_cancelling", "_delay", "_group", "_task", "expired")

    def __init__(self, delay: float) -> None:
        self._delay = delay
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._group: set[Deadline] | None = None
        self.expired = False

    def __enter__(self) -> Deadline:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("a deadline must be entered inside a task")
        if self._task is not None:
            raise RuntimeError("a Deadline cannot be entered twice")
        self._task = task
        self._cancelling = task.cancelling()
        timers = _TIMERS.get(loop)
        if timers is None:
            timers = _TIMERS[loop] = _Timers()
        self._group = timers.join(loop, loop.time() + self._delay, self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._group is not None and self._task is not None
        self._group.discard(self)
        if (
            self.expired
            and self._task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc

    def _expire(self) -> None:
        assert self._task is not None
        self.expired = True
        self._task.cancel()


def deadline(delay: float) -> Deadline:
    """``with deadline(seconds):`` — see the module docstring."""
    return Deadline(delay)


class _Timers:
    """One loop's shared timers: for each tick still to come, the deadlines that end on it.

    It does not hold its loop (the registry is keyed weakly by the loop).
    """

    def __init__(self) -> None:
        self._due: dict[int, set[Deadline]] = {}

    def join(self, loop: asyncio.AbstractEventLoop, when: float, scope: Deadline) -> set[Deadline]:
        tick = math.ceil(when / TICK)
        group = self._due.get(tick)
        if group is None:
            group = self._due[tick] = set()
            loop.call_at(tick * TICK, self._fire, tick)
        group.add(scope)
        return group

    def _fire(self, tick: int) -> None:
        for scope in self._due.pop(tick, ()):
            scope._expire()


_TIMERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Timers] = weakref.WeakKeyDictionary()
