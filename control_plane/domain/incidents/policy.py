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

# What ``counted_status`` makes of a 429/503 without Retry-After (``UNAVAILABLE``): the service
# is not serving us and says nothing of when it will, so it counts as failing, but an incident
# of nothing else is ``degraded``, not ``down``.
IMPAIRED = "impaired"
BAD = frozenset({"down", IMPAIRED})
GOOD = frozenset({"up", "degraded"})
CONCLUSIVE = BAD | GOOD
# What ``counted_status`` makes of a throttled result: neither bad nor good.
THROTTLED = "throttled"


def counted_status(status: str, error_code: str | None) -> str:
    """The status the incident rules count: a check the agent's per-host throttle never ran
    (``degraded``/``THROTTLED``) is neither a failure nor a recovery; a 429/503 without
    Retry-After (``degraded``/``UNAVAILABLE``) is a failure of the lower severity. A 429/503
    *with* Retry-After (``RATE_LIMITED``) stays ``degraded``, which is good: the service is up
    and asks us to back off."""
    if status == "degraded":
        if error_code == codes.THROTTLED:
            return THROTTLED
        if error_code == codes.UNAVAILABLE:
            return IMPAIRED
    return status


@dataclass(frozen=True, slots=True)
class RegionCounters:
    consecutive_bad: int = 0
    consecutive_good: int = 0
    failing: bool = False
    # The first bad result of the run that made (or is making) the region fail.
    failing_since: datetime | None = None
    # The first good result of the current good run: where a recovery starts.
    good_since: datetime | None = None
    # The current bad run or failing episode saw a ``down`` (not only ``impaired``).
    hard: bool = False


def apply_result(
    state: RegionCounters, status: str, confirmations: int, at: datetime
) -> RegionCounters:
    """The region's counters after one more result (in slot order)."""
    if status in BAD:
        bad = state.consecutive_bad + 1
        ongoing = state.failing or state.consecutive_bad > 0
        since = state.failing_since
        if not state.failing and bad == 1:
            # Remember where this bad run started: an incident starts there, not at confirmation.
            since = at
        failing = state.failing or bad >= confirmations
        hard = (state.hard and ongoing) or status == "down"
        return RegionCounters(bad, 0, failing, since, None, hard)
    if status in GOOD:
        # The good run saturates at the confirmations: past them a good result changes nothing
        # the rules read (a recovery needs that many; a region not failing only needs one), so a
        # steady region's counters stay put and ingest keeps only its watermarks (issue 18).
        good = min(state.consecutive_good + 1, max(confirmations, 1))
        good_since = state.good_since if state.consecutive_good > 0 else at
        if state.failing and good >= confirmations:
            return RegionCounters(0, good, False, None, good_since, False)
        if state.failing:
            return RegionCounters(0, good, True, state.failing_since, good_since, state.hard)
        return RegionCounters(0, good, False, None, good_since, False)
    return replace(state)


def needed(policy: Any, reporting: int) -> int:
    """How many failing regions, of ``reporting``, the policy needs for an open incident."""
    if isinstance(policy, dict):
        return int(policy["count"])
    if policy == "any":
        return 1
    if policy == "all":
        return reporting
    # "majority" (the default): more than half of the reporting regions.
    return reporting // 2 + 1


def policy_met(policy: Any, failing: int, reporting: int) -> bool:
    """Whether ``failing`` of ``reporting`` regions are enough for an open incident."""
    if failing <= 0 or reporting <= 0:
        return False
    return failing >= needed(policy, reporting)


def quorum_start(failing_since: list[datetime], k: int) -> datetime | None:
    """When the policy became true: the ``k``-th earliest start among the failing regions'
    runs. A region whose own run began long before (a lossy region's streak) does not date the
    incident unless it is needed to make the quorum."""
    starts = sorted(failing_since)
    if not starts:
        return None
    return starts[min(max(k, 1), len(starts)) - 1]


def quorum_end(recoveries: list[datetime], still_failing: int, k: int) -> datetime | None:
    """When the policy became false: with ``still_failing`` regions failing and the others
    recovered (``recoveries``: the first good result of each one's recovery run), the moment
    the failing count first dropped below ``k``."""
    ends = sorted(recoveries)
    if not ends:
        return None
    index = still_failing + len(ends) - k
    return ends[min(max(index, 0), len(ends) - 1)]
