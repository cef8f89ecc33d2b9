"""Validation of short human-entered text (names, locations, tags): trimmed, bounded, printable."""

from __future__ import annotations

import unicodedata

from control_plane.errors import ApiError


def has_control(value: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in value)


def clean_text(
    value: str, *, field: str, code: str, max_len: int, min_len: int = 1, label: str = "name"
) -> str:
    """``value`` stripped, or the envelope's 400 with ``code`` at ``field``."""
    cleaned = value.strip()
    if not min_len <= len(cleaned) <= max_len or has_control(cleaned):
        span = f"{min_len} to {max_len}" if min_len else f"at most {max_len}"
        raise ApiError(
            400, code, f"{label} must be {span} characters, no control characters", field
        )
    return cleaned
