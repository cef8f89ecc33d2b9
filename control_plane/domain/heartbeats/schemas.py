"""What the heartbeat (push) surface answers, and what a heartbeat target's reads carry."""

from __future__ import annotations

from datetime import datetime

import msgspec


class PingAck(msgspec.Struct, kw_only=True):
    ok: bool = True


class HeartbeatEndpoint(msgspec.Struct, kw_only=True):
    """Where the monitored job reports, and what it last reported.

    The token is re-copyable (sealed at rest, like a share link's); it is null only when it was
    sealed under a key that is no longer configured.
    """

    token: str | None
    # ``GET|POST`` this path (prepend the API origin); ``/start`` and ``/fail`` below it.
    url: str | None
    # The target turns down if no ping or failure arrives before then.
    expected_by: datetime
    last_ping_at: datetime | None
    last_fail_at: datetime | None
    # A run in progress since then (``/start`` without a ping or failure yet).
    last_start_at: datetime | None
