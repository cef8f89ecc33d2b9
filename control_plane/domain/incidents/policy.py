"""The incident rules as pure functions: per-region confirmation counters and region policies.

Per region, a target is *failing* after ``alert_confirmations`` consecutive bad results and
*recovered* after as many consecutive good ones. ``down`` is bad; ``up`` and ``degraded`` are good
(a rate-limited answer is not an outage); ``error`` (the probe could not run), ``missed`` (nobody
ran the slot) and a check the agent's per-host throttle held back (``degraded`` with error code
``THROTTLED``: never run) say nothing about the target and leave the counters alone.

The target's ``region_policy`` decides over the regions that *report* (have a recent conclusive
result) whether enough of them are failing for the one incident to be open.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shared import codes

BAD = frozenset({"down"})
GOOD = frozenset({"up", "degraded"})
CONCLUSIVE = BAD | GOOD
# What ``counted_status`` makes of a throttled result: neither bad nor good.
THROTTLED = "throttled"


def counted_status(status: str, error_code: str | None) -> str:
    """The status the incident rules count: a check the agent's per-host throttle never ran
    (``degraded``/``THROTTLED``) is neither a failure nor a recovery."""
    if error_code == codes.THROTTLED and status == "degraded":
        return THROTTLED
    return status


@dataclass(frozen=True, slots=True)
class RegionCounters:
    consecutive_bad: int = 0
    consecutive_good: int = 0
    failing: bool = False
    failing_since: datetime | None = None


def apply_result(
    state: RegionCounters, status: str, confirmations: int, at: datetime
) -> RegionCounters:
    """The region's counters after one more result (in slot order)."""
    if status in BAD:
        bad = state.consecutive_bad + 1
        since = state.failing_since
        if not state.failing and bad == 1:
            # Remember where this bad run started: an incident starts there, not at confirmation.
            since = at
        failing = state.failing or bad >= confirmations
        return RegionCounters(bad, 0, failing, since)
    if status in GOOD:
        good = state.consecutive_good + 1
        if state.failing and good >= confirmations:
            return RegionCounters(0, good, False, None)
        since = state.failing_since if state.failing else None
        return RegionCounters(0, good, state.failing, since)
    return replace(state)


def policy_met(policy: Any, failing: int, reporting: int) -> bool:
    """Whether ``failing`` of ``reporting`` regions are enough for an open incident."""
    if failing <= 0 or reporting <= 0:
        return False
    if isinstance(policy, dict):
        return failing >= int(policy["count"])
    if policy == "any":
        return True
    if policy == "all":
        return failing >= reporting
    # "majority" (the default): more than half of the reporting regions.
    return failing * 2 > reporting
