"""Validation of short human-entered text (names, locations, tags): trimmed, bounded, printable;
and NUL characters, which PostgreSQL's text and jsonb cannot hold."""

from __future__ import annotations

import unicodedata
from typing import Any

from control_plane.core.errors import ApiError


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


# How a NUL character appears in a JSON document (JSON has no other way to carry one).
JSON_NUL = b"\\u0000"


def without_nul(value: Any) -> Any:
    """``value`` (JSON builtins: str, list, dict, scalars) with every NUL character replaced by
    U+FFFD. A result may quote what a server sent (a body excerpt, a TXT record), NULs included;
    it is stored with them marked rather than refused. Builds the copy with an explicit stack,
    so no nesting depth can exhaust Python's recursion limit."""
    root: list[Any] = [None]
    # (a value to copy, the container its copy goes in, the index or key there)
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while stack:
        item, into, at = stack.pop()
        if isinstance(item, str):
            into[at] = item.replace("\x00", "\ufffd")
        elif isinstance(item, list):
            copy: list[Any] = [None] * len(item)
            into[at] = copy
            stack.extend((child, copy, i) for i, child in enumerate(item))
        elif isinstance(item, dict):
            mapping: dict[Any, Any] = {}
            into[at] = mapping
            for key, child in item.items():
                clean = key.replace("\x00", "\ufffd") if isinstance(key, str) else key
                mapping[clean] = None  # keeps the keys in their order
                stack.append((child, mapping, clean))
        else:
            into[at] = item
    return root[0]
