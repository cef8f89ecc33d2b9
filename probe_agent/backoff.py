"""Exponential backoff with jitter, for talking to a control plane that is not answering."""

from __future__ import annotations

import random


class Backoff:
    """Delays that double from ``base`` up to ``cap`` seconds, each drawn from [d/2, d].

    Half of the delay is kept so retries never collapse to zero; the random half spreads many
    agents that lost the control plane at the same moment.
    """

    def __init__(
        self, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None
    ) -> None:
        if not 0 < base <= cap:
            raise ValueError("backoff needs 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2.0 ** min(self.failures, 32))
        self.failures += 1
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.failures = 0
