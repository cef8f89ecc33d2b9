"""An overloaded agent says so (issue 18) instead of silently falling behind.

After each lease call the agent knows two things: whether the control plane handed out all it
asked for (a full batch: more is due than this agent takes) and how late the slots it got are
(``server_time - scheduled_at``, both on the control plane's clock). An agent that keeps getting
full batches of slots already late is behind: its checks start late, and past their interval the
control plane records them missed. That state is the ``vigil_agent_overloaded`` gauge (1 while
it lasts) and one warning line when it starts (``agent_overloaded``, with what to do) and one
info line when it ends (``agent_caught_up``); every leased slot's lateness is also in the
``vigil_agent_lease_lateness_seconds`` histogram.

Entering takes ``enter_after_s`` of full, late batches (a burst does not count; a gap of under
``gap_s`` between two of them does not restart the count); leaving takes ``leave_after_s``
without one, so a loaded agent does not flap between the two states with every lease call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from probe_agent.metrics import AgentMetrics

log = structlog.get_logger("vigil.agent.overload")

# A slot leased later than this after its time counts as late.
LATE_S = 1.0
# Full, late batches for this long make the agent overloaded...
ENTER_AFTER_S = 5.0
# ... with gaps between them of at most this long; and none for this long ends it.
GAP_S = 2.0
LEAVE_AFTER_S = 10.0


@dataclass
class OverloadMonitor:
    metrics: AgentMetrics
    concurrency: int
    late_s: float = LATE_S
    enter_after_s: float = ENTER_AFTER_S
    gap_s: float = GAP_S
    leave_after_s: float = LEAVE_AFTER_S
    overloaded: bool = False
    # Monotonic times of the first and the last full, late batch of the current run of them.
    _behind_since: float | None = field(default=None, repr=False)
    _last_behind: float = field(default=float("-inf"), repr=False)
    _worst_s: float = field(default=0.0, repr=False)

    def observe(self, now: float, asked: int, got: int, lateness_s: list[float]) -> None:
        """One lease answer: ``asked`` slots asked for, ``got`` handed out, their lateness."""
        for late in lateness_s:
            self.metrics.observe_lease_lateness(late)
        oldest = max(lateness_s, default=0.0)
        behind = asked > 0 and got >= asked and oldest > self.late_s
        if not behind:
            quiet = now - self._last_behind
            if self._behind_since is not None and quiet > self.gap_s:
                self._behind_since = None
                self._worst_s = 0.0
            if self.overloaded and quiet >= self.leave_after_s:
                self.overloaded = False
                self.metrics.overloaded.set(0)
                log.info("agent_caught_up", lateness_s=round(oldest, 3))
            return
        self._last_behind = now
        self._worst_s = max(self._worst_s, oldest)
        if self._behind_since is None:
            self._behind_since = now
        if not self.overloaded and now - self._behind_since >= self.enter_after_s:
            self.overloaded = True
            self.metrics.overloaded.set(1)
            self.metrics.overload_episodes.inc()
            log.warning(
                "agent_overloaded",
                behind_for_s=round(now - self._behind_since, 1),
                lateness_s=round(self._worst_s, 3),
                concurrency=self.concurrency,
                advice="slots start late and will be recorded missed past their interval: "
                "raise --concurrency or --processes, or add an agent to this region",
            )
