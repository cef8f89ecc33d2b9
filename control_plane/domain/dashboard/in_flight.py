"""The dashboard's checks in flight: a per-org snapshot the worker takes (migration 0211).

Counting an org's live leases means a pass over its schedule rows (``lease_expires_at`` has no
index: the lease and the ingest rewrite it on every check, and an index on it would end their
HOT updates of ``schedules``). The summary paid it on every uncached request (12.5 ms for
60,000 targets); now the worker counts every org's live leases in one pass every
``SNAPSHOT_EVERY_SECS`` and the summary reads the org's row.

Freshness: the summary takes the snapshot only while it is at most ``FRESH_SECS`` old (by the
database's clock, ``in_flight_snapshot.taken_at``); older, or never taken (no worker yet), it
counts live as before. So ``in_flight_checks`` is the number of leases live at some instant of
the last ``FRESH_SECS`` seconds before the summary was computed, normally of the last
``SNAPSHOT_EVERY_SECS`` plus the job's run; the 5 s summary cache comes on top of either.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from control_plane.db.sql import Queries

Q = Queries.beside(__file__)
# The worker's job runs this often (worker/main.py)...
SNAPSHOT_EVERY_SECS = 5
# ...and the summary uses a snapshot at most this old (three runs: one late or failed run
# does not send every summary to the live count).
FRESH_SECS = 3 * SNAPSHOT_EVERY_SECS


async def take_snapshot(conn: AsyncConnection[Any]) -> dict[str, Any]:
    """Every org's checks in flight now; returns ``taken_at``, ``orgs`` (with any in flight)
    and ``written`` (rows changed)."""
    row = await (await conn.execute(Q.refresh_in_flight)).fetchone()
    assert row is not None
    return dict(row)
