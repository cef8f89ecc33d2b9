"""A surge of evaluations: many targets asked for within a second (a mass outage's failing
results coming in), measured where the worker receives them (``slots.py``).

While the agents' ingest of a mass outage is at its peak, evaluating it flat out (opening
thousands of incidents per second, then sending their notifications) takes the machine's cores
from that ingest and from every agent's lease: on a 2-core machine the agents' p99 was 3-5x the
quiet one during the seconds of the ingest burst, and within 2x once the worker was kept out of
them. So while targets are asked for faster than ``inflow`` per second, the worker evaluates
``rate`` per second (0, the default: none) and leaves the rest pending until the burst is over,
and delivers no notification meanwhile (``notifications/jobs.py``), but defers no target longer
than ``max_defer_secs``: the backlog then goes at full speed, surge or not. A trickle (a rate
above 0) opens an outage's first incidents at once, but splits a chat channel's storm over
more grouped messages; deferred whole, the outage's incidents open together once its results
are in.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

# The arrivals of the last WINDOW seconds make the inflow (short: a burst is seen within it).
WINDOW = 0.5


@dataclass(frozen=True, slots=True)
class SurgePolicy:
    # Targets asked for per second that make a surge (``VIGIL_ENGINE_SURGE_INFLOW``; 0: off).
    inflow: float = 0.0
    # Targets evaluated per second during a surge (``VIGIL_ENGINE_SURGE_RATE``; 0: none).
    rate: float = 0.0
    # The longest a target waits for its evaluation because of a surge
    # (``VIGIL_ENGINE_SURGE_MAX_SECS``).
    max_defer_secs: float = 8.0

    def __post_init__(self) -> None:
        if not (self.inflow >= 0 and self.rate >= 0 and self.max_defer_secs >= 0):
            raise ValueError("surge: inflow, rate and max_defer_secs are at least 0")


class InflowMeter:
    """Targets asked for in the last ``WINDOW`` seconds, per second."""

    def __init__(self) -> None:
        self._arrivals: deque[tuple[float, int]] = deque()
        self._sum = 0

    def add(self, now: float, n: int) -> None:
        self._arrivals.append((now, n))
        self._sum += n
        self._trim(now)

    def per_sec(self, now: float) -> float:
        self._trim(now)
        return self._sum / WINDOW

    def _trim(self, now: float) -> None:
        while self._arrivals and self._arrivals[0][0] <= now - WINDOW:
            self._sum -= self._arrivals.popleft()[1]
