"""Decoding a lease response one lease at a time, and how many leases to ask for.

A lease whose check this agent cannot read (a kind added to the control plane before this agent
was upgraded, a malformed spec) must not make the whole batch unreadable: it is kept as an
``UnreadableLease`` and answered with a probe ``error`` result for its slot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
import structlog

from shared.protocol import Lease, LeaseResponse

log = structlog.get_logger("vigil.agent.leases")


class _RawLeaseResponse(msgspec.Struct):
    leases: list[msgspec.Raw]
    server_time: datetime


class _LeaseSlot(msgspec.Struct, kw_only=True):
    lease_id: str
    target_id: str
    scheduled_at: datetime
    check: dict[str, Any] = msgspec.field(default_factory=dict)


@dataclass(frozen=True)
class UnreadableLease:
    lease_id: str
    target_id: str
    scheduled_at: datetime
    kind: str
    reason: str


@dataclass
class LeaseBatch:
    server_time: datetime
    leases: list[Lease] = field(default_factory=list)
    unreadable: list[UnreadableLease] = field(default_factory=list)


def decode_lease_response(payload: bytes) -> LeaseBatch:
    """Raises ``msgspec.DecodeError`` only when the envelope itself is not a lease response."""
    try:  # every lease readable, the usual case: one pass
        whole = msgspec.json.decode(payload, type=LeaseResponse)
    except msgspec.DecodeError:
        pass
    else:
        return LeaseBatch(server_time=whole.server_time, leases=whole.leases)
    raw = msgspec.json.decode(payload, type=_RawLeaseResponse)
    batch = LeaseBatch(server_time=raw.server_time)
    for item in raw.leases:
        try:
            batch.leases.append(msgspec.json.decode(item, type=Lease))
            continue
        except msgspec.DecodeError as exc:
            reason = str(exc)
        try:
            slot = msgspec.json.decode(item, type=_LeaseSlot)
        except msgspec.DecodeError as exc:
            log.error("lease_unreadable", error=str(exc))
            continue
        kind = slot.check.get("type")
        batch.unreadable.append(
            UnreadableLease(
                lease_id=slot.lease_id,
                target_id=slot.target_id,
                scheduled_at=slot.scheduled_at,
                kind=kind if isinstance(kind, str) else "unknown",
                reason=reason,
            )
        )
    return batch


# The most work a busy agent holds leased beyond its workers, in seconds at its current pace.
AHEAD_S = 1.0


class LeaseSizer:
    """How far ahead of its free workers the agent leases, and how many free places it waits
    for before it asks again.

    A lease call costs a round trip and its share of the control plane's work whatever it
    carries. Idle (an answer shorter than asked for: everything due was handed out) the agent
    asks as soon as one place is free, ``base`` leases ahead of its workers. Busy (a full
    answer: more is due than it asked for) every full answer doubles the lease-ahead, up to
    ``most``, and the next call waits until half of it is free: a busy agent then leases in
    batches of tens to hundreds, where it used to ask for the one or two places that freed up
    during the last round trip. A short answer halves it back towards ``base``. Leases waiting
    for a worker are due already and run in the order leased; at shutdown they are given back.

    What waits is also kept under ``AHEAD_S`` of work at the pace checks finish (``per_s``, when
    the caller knows it): a lease expires at its check's timeout plus a grace, and an agent
    whose checks are slow (timing out) must not hold more than it starts within that.
    """

    __slots__ = ("ahead", "base", "most")

    def __init__(self, base: int, most: int) -> None:
        if base < 0:
            raise ValueError("base must be >= 0")
        self.base = base
        self.most = max(base, most)
        self.ahead = base

    @property
    def busy(self) -> bool:
        return self.ahead > self.base

    @property
    def min_batch(self) -> int:
        """Free places to wait for before the next lease call."""
        return max(1, self.ahead // 2) if self.busy else 1

    def observe(self, asked: int, got: int, per_s: float | None = None) -> None:
        """One lease call's answer: ``got`` of the ``asked`` leases; ``per_s``, checks finished
        per second lately, if known."""
        if asked > 0 and got >= asked:
            ahead = min(self.most, max(2 * self.ahead, self.base + 1))
        else:
            ahead = self.ahead // 2
        if per_s is not None:
            ahead = min(ahead, int(per_s * AHEAD_S))
        self.ahead = max(self.base, ahead)
