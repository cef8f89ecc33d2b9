"""What this agent last reported for each target, so that a result which changes it is sent at
once instead of waiting for the batch age.

Batching by age (``--batch-age-ms``) costs a steady result nothing that matters, but it adds up
to the whole age to the time an outage (or a recovery) takes to be detected: detection should be
interval x confirmations plus well under a second. So the result of a target whose status
differs from the one this agent reported last is handed to the batcher as urgent.

The memory is bounded. At most ``capacity`` targets are remembered (the least recently leased
forgotten first), and a target not leased again within twice its interval plus a grace period
is forgotten: deleted, moved to another region, or now served by another agent of the region.
A target forgotten or never seen has nothing to differ from: its first result batches as usual,
so a restarted agent does not send each target's first result on its own. Agents sharing a
region each remember their own reports; one that reports a change another agent already sent
only sends it sooner than it had to.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from shared.codes import THROTTLED
from shared.protocol import CheckResult, Lease

DEFAULT_CAPACITY = 100_000
# On top of twice the interval: a slot handed out late, a check that ran to its timeout.
GRACE_S = 60.0


class _Entry:
    __slots__ = ("expires", "status")

    def __init__(self, status: str | None, expires: float) -> None:
        self.status = status
        self.expires = expires


class StatusMemory:
    """The status this agent last reported per target (``leased`` then ``changed``)."""

    def __init__(
        self, capacity: int = DEFAULT_CAPACITY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._clock = clock
        # target id -> entry, least recently leased first.
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def leased(self, lease: Lease) -> None:
        """Keep the target's last status while it is leased; forget targets that are not."""
        now = self._clock()
        keep_until = now + 2 * lease.interval_secs + GRACE_S
        entry = self._entries.get(lease.target_id)
        if entry is None:
            self._entries[lease.target_id] = _Entry(None, keep_until)
        else:
            if entry.expires < now:  # forgotten in all but name: nothing to differ from
                entry.status = None
            entry.expires = keep_until
            self._entries.move_to_end(lease.target_id)
        self._forget(now)

    def changed(self, result: CheckResult) -> bool:
        """Record ``result`` as reported; True when its status differs from the last one.

        A throttled result is no verdict on the target (the check did not run): it is neither
        a change nor remembered.
        """
        if result.error_code == THROTTLED:
            return False
        entry = self._entries.get(result.target_id)
        if entry is None:
            return False
        previous, entry.status = entry.status, result.status
        return previous is not None and previous != result.status

    def _forget(self, now: float) -> None:
        """Drop the oldest entries past the capacity, and expired ones from the old end."""
        entries = self._entries
        while len(entries) > self.capacity:
            entries.popitem(last=False)
        while entries:
            oldest = next(iter(entries.values()))
            if oldest.expires >= now:
                break
            entries.popitem(last=False)
