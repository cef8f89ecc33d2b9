"""The pagination envelope ``{items, total, limit, offset}`` and its query parameters.

A list route declares ``limit``/``offset`` with its ``PageSize``, reads them with
``SIZE.paging(limit, offset)`` and answers ``paging.page(items, total)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from litestar.params import QueryParameter

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


# ``minimum`` is stated again for the document: Litestar leaves out a bound of 0.
Offset = Annotated[
    int | None,
    QueryParameter(
        ge=0,
        le=MAX_OFFSET,
        description="rows to skip (default 0)",
        schema_extra={"minimum": 0},
    ),
]


@dataclass(frozen=True, slots=True)
class PageSize:
    """A list route's page size: ``limit: Annotated[int | None, SIZE.limit] = None`` (with
    ``offset: Offset = None``) declares the parameters, ``SIZE.paging(limit, offset)`` reads
    them. Parameters, not a dependency: see ``core/timerange.py``."""

    default: int
    cap: int

    @property
    def limit(self) -> Any:
        return QueryParameter(
            ge=1, description=f"page size (default {self.default}, capped at {self.cap})"
        )

    def paging(self, limit: int | None, offset: int | None) -> Paging:
        return Paging(*page_params(limit, offset, self.default, self.cap))
