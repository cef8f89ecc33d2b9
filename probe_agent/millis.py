"""Timings in milliseconds, as the wire carries them (a module of its own: ``netguard`` and the
checks both use it, and the checks import ``netguard``)."""

from __future__ import annotations


def to_ms(seconds: float) -> float:
    """``seconds`` in milliseconds, to the microsecond: ``round(seconds * 1000, 3)`` but for a
    tie rounded the other way. ``round`` to a number of digits goes through a decimal string
    (about 2,000 instructions, and a check rounds six timings); rounding the microseconds to an
    integer does not."""
    return round(seconds * 1_000_000) / 1000
