"""Lease ids that carry their own proof.

A lease id names one slot (target, region, scheduled_at), the agent that holds it and the server
time it expires, and is signed with a key derived from the deployment's token key. Ingest can
therefore reject a forged or foreign lease, or a result for a slot other than the one leased,
without a database round trip per row.

An on-demand lease (check-now, one-shot test) also names its job: it is version 2 of the id,
with the job id after the head. Ordinary ids stay version 1, byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_VERSION = b"\x01"
_VERSION_ON_DEMAND = b"\x02"
_JOB = struct.Struct(">16s")
_HEAD = struct.Struct(">16s16sqq")  # target, agent, scheduled_at µs, expires_at µs
_MAC_LEN = 16
_URLSAFE = bytes.maketrans(b"-_", b"+/")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def _us(t: datetime) -> int:
    """Exact microseconds since the epoch (no float rounding)."""
    return ((t if t.tzinfo else t.replace(tzinfo=UTC)) - _EPOCH) // _MICRO


def _dt(us: int) -> datetime:
    return _EPOCH + us * _MICRO


@dataclass(frozen=True, slots=True)
class LeaseClaim:
    target_id: uuid.UUID
    agent_id: uuid.UUID
    region_id: str
    scheduled_at: datetime
    expires_at: datetime
    # The on-demand job this lease runs, or None for a slot of the schedule.
    job_id: uuid.UUID | None = None


class LeaseSigner:
    def __init__(self, token_key: bytes) -> None:
        self._key = hmac.new(token_key, b"vigil lease ids v1", hashlib.sha256).digest()
        # HMAC-SHA256 (RFC 2104) with its two keyed states computed once: ingest verifies a
        # thousand ids per batch, and ``hmac.digest`` would set the key up again for each one.
        block = self._key.ljust(hashlib.sha256().block_size, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
        self._agents: dict[bytes, uuid.UUID] = {}

    def _mac(self, payload: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(payload)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:_MAC_LEN]

    def issue(self, claim: LeaseClaim) -> str:
        job = b"" if claim.job_id is None else _JOB.pack(claim.job_id.bytes)
        payload = (
            (_VERSION if claim.job_id is None else _VERSION_ON_DEMAND)
            + _HEAD.pack(
                claim.target_id.bytes,
                claim.agent_id.bytes,
                _us(claim.scheduled_at),
                _us(claim.expires_at),
            )
            + job
            + claim.region_id.encode()
        )
        token = payload + self._mac(payload)
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode()

    def _agent(self, raw: bytes) -> uuid.UUID:
        """The agent id of a claim: the same few agents sign every row, so their ids are
        parsed once (a bounded cache; only ids under a valid MAC get here)."""
        agent = self._agents.get(raw)
        if agent is None:
            if len(self._agents) >= 4096:
                self._agents.clear()
            agent = self._agents[raw] = uuid.UUID(bytes=raw)
        return agent

    def verify(self, lease_id: str) -> LeaseClaim | None:
        """The claim, or None when the id is malformed or not signed by this deployment."""
        try:
            # base64.urlsafe_b64decode, without its layers of Python (the same lenient decoding).
            raw = binascii.a2b_base64(
                lease_id.encode("ascii").translate(_URLSAFE) + b"=" * (-len(lease_id) % 4)
            )
        except (ValueError, TypeError, AttributeError):
            return None
        version = raw[:1]
        extra = _JOB.size if version == _VERSION_ON_DEMAND else 0
        if len(raw) < 1 + _HEAD.size + extra + _MAC_LEN or version not in (
            _VERSION,
            _VERSION_ON_DEMAND,
        ):
            return None
        payload, mac = raw[:-_MAC_LEN], raw[-_MAC_LEN:]
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        target, agent, sched_us, exp_us = _HEAD.unpack_from(payload, 1)
        job = uuid.UUID(bytes=_JOB.unpack_from(payload, 1 + _HEAD.size)[0]) if extra else None
        try:
            region = payload[1 + _HEAD.size + extra :].decode()
        except UnicodeDecodeError:
            return None
        return LeaseClaim(
            target_id=uuid.UUID(bytes=target),
            agent_id=self._agent(agent),
            region_id=region,
            scheduled_at=_dt(sched_us),
            expires_at=_dt(exp_us),
            job_id=job,
        )
