"""The pagination envelope ``{items, total, limit, offset}`` and its query parameters.

A list route takes ``paging: Paging`` from the ``paging(default, cap)`` dependency of its
controller, and answers ``paging.page(items, total)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import msgspec
from litestar.di import Provide
from litestar.params import Parameter

from control_plane.core.errors import ApiError

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


@dataclass(frozen=True, slots=True)
class Paging:
    limit: int
    offset: int

    def page(self, items: list[T], total: int) -> Page[T]:
        return Page(items=items, total=total, limit=self.limit, offset=self.offset)


def paging(default: int, cap: int) -> Provide:
    """The ``limit``/``offset`` query parameters of a list route: ``limit`` defaults to
    ``default`` and is silently capped at ``cap``."""

    # Defaults, not ``Annotated``: the annotations are strings evaluated in the module's scope,
    # where ``default`` and ``cap`` do not exist.
    def provider(
        limit: int | None = Parameter(
            default=None, ge=1, description=f"page size (default {default}, capped at {cap})"
        ),
        offset: int | None = Parameter(
            default=None, ge=0, le=MAX_OFFSET, description="rows to skip (default 0)"
        ),
    ) -> Paging:
        return Paging(*page_params(limit, offset, default, cap))

    return Provide(provider, sync_to_thread=False)
