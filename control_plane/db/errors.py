"""Translate psycopg integrity errors into API errors by constraint name; never leak them."""

from __future__ import annotations

import psycopg
from psycopg import errors as pg

from control_plane.errors import ApiError

# constraint name -> (status, code, message)
CONSTRAINTS: dict[str, tuple[int, str, str]] = {
    "regions_pkey": (409, "REGION_EXISTS", "a region with this id already exists"),
    "agents_region_fkey": (400, "REGION_NOT_FOUND", "region does not exist"),
    "target_regions_region_fkey": (409, "REGION_IN_USE", "region is still assigned to targets"),
    "channels_org_name_key": (422, "CHANNEL_NAME_TAKEN", "a channel with this name exists"),
}


def translate(exc: psycopg.Error) -> ApiError | None:
    diag = getattr(exc, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name and name in CONSTRAINTS:
        status, code, message = CONSTRAINTS[name]
        return ApiError(status, code, message)
    if isinstance(exc, pg.CheckViolation):
        return ApiError(400, "VALIDATION_ERROR", "value violates a constraint")
    return None
