"""Decoding a lease response one lease at a time.

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
