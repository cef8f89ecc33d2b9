"""How long a lease lives and how far an agent's clock may stray: shared by lease, ingest and
the rollups (which must know how late a result can still arrive)."""

from __future__ import annotations

from datetime import timedelta

from shared.checks import MAX_TIMEOUT_MS

# Seconds a lease outlives the check's own timeout (network, queueing, ingest latency).
LEASE_GRACE_SECS = 10
# Slots due within this many seconds are leased oldest first; the room left in a batch is filled
# from the older backlog newest first, so an overloaded region sheds its oldest slots (recorded
# missed) instead of running every slot late (lease_due in queries.sql, issue 18).
LEASE_SHED_SECS = 2
# Clock skew tolerated between an agent's timestamps and the lease window.
CLOCK_SKEW = timedelta(seconds=30)

# Every row of a slot is committed before ``scheduled_at + interval + SETTLE_MARGIN_SECS`` in
# normal running (the longest timeout, the lease grace, the clock skew and a minute of slack):
# the rollups settle minutes past that, and recompute a minute a later result arrives in.
SETTLE_MARGIN_SECS = (
    MAX_TIMEOUT_MS // 1000 + LEASE_GRACE_SECS + int(CLOCK_SKEW.total_seconds()) + 60
)
