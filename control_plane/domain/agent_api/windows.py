"""How long a lease lives and how far an agent's clock may stray: shared by lease, ingest and
the rollups (which must know how late a result can still arrive)."""

from __future__ import annotations

from datetime import timedelta

# Seconds a lease outlives the check's own timeout (network, queueing, ingest latency).
LEASE_GRACE_SECS = 10
# Clock skew tolerated between an agent's timestamps and the lease window.
CLOCK_SKEW = timedelta(seconds=30)
