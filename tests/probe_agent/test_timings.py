"""Per-phase timings in milliseconds: ``to_ms`` rounds to the microsecond as ``round(x, 3)``."""

from __future__ import annotations

import random

from probe_agent.checks.base import ms_between
from probe_agent.millis import to_ms


def test_to_ms_is_milliseconds_to_the_microsecond() -> None:
    assert to_ms(0.0) == 0.0
    assert to_ms(1.5) == 1500.0
    assert to_ms(0.0123456) == 12.346
    assert to_ms(0.0123454) == 12.345
    rng = random.Random(18)
    for _ in range(10_000):
        seconds = rng.uniform(0, 30)
        # The same value as round(ms, 3), or a microsecond apart on a tie.
        assert abs(to_ms(seconds) - round(seconds * 1000, 3)) <= 0.001 + 1e-9
        assert to_ms(seconds) == round(to_ms(seconds), 3)


def test_ms_between_never_goes_negative() -> None:
    assert ms_between(2.0, 1.0) == 0.0
    assert ms_between(1.0, 1.0025) == 2.5
    assert ms_between(None, 1.0) is None
