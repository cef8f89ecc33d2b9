"""The pagination envelope ``{items, total, limit, offset}`` and its query parameters."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

from control_plane.errors import ApiError

T = TypeVar("T")
# OFFSET is a bigint in PostgreSQL; anything larger is a client mistake, not a 500.
MAX_OFFSET = 2**63 - 1


class Page(msgspec.Struct, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


def page_params(limit: int | None, offset: int | None, default: int, cap: int) -> tuple[int, int]:
    """Validate ``limit``/``offset``; ``limit`` is silently capped at ``cap``."""
    lim = default if limit is None else limit
    off = 0 if offset is None else offset
    if lim < 1:
        raise ApiError(400, "INVALID_QUERY_PARAM", "limit must be at least 1", "/limit")
    if not 0 <= off <= MAX_OFFSET:
        raise ApiError(
            400, "INVALID_QUERY_PARAM", f"offset must be between 0 and {MAX_OFFSET}", "/offset"
        )
    return min(lim, cap), off
