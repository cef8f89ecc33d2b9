"""Database errors become API errors here, by constraint name, and nowhere else.

A service lets an ``IntegrityError`` it did not prevent (a foreign key a write missed, a unique
key two writers raced for) propagate; the app's exception handler answers with the rule below,
so no driver message ever reaches a client and a constraint is never a 500. A service that can
say more (how many rows still use a region) adds it to the ``ApiError`` that ``translate``
returns. A constraint with no rule is a 409 ``CONFLICT``, logged so that it gets one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import structlog
from psycopg import errors as pg

from control_plane.core.errors import ApiError

log = structlog.get_logger("vigil.db_errors")


@dataclass(frozen=True, slots=True)
class Rule:
    status: int
    code: str
    # May name ``{value}``: the offending key's value, from the driver's detail line.
    message: str
    field: str | None = None


# Writes that break a constraint, by its name.
CONSTRAINTS: dict[str, Rule] = {
    "agents_region_fkey": Rule(422, "UNKNOWN_REGION", "region '{value}' does not exist", "/region"),
    "target_regions_region_fkey": Rule(
        400, "UNKNOWN_REGION", "region '{value}' does not exist or is disabled", "/regions"
    ),
    "regions_pkey": Rule(409, "REGION_EXISTS", "region '{value}' already exists", "/id"),
    "region_grants_org_id_fkey": Rule(404, "ORG_NOT_FOUND", "org {value} does not exist"),
}
# Deletes refused because rows elsewhere still refer to the row, by the referenced table.
REFERENCED: dict[str, Rule] = {
    "regions": Rule(409, "REGION_IN_USE", "region '{value}' is still in use"),
}

_DETAIL_KEY = re.compile(r"Key \((?P<column>[^)]*)\)=\((?P<value>.*)\)")
_DELETE_ON = re.compile(r'^update or delete on table "(?P<table>[^"]+)"')


def translate(exc: pg.IntegrityError) -> ApiError:
    """The API error for a constraint violation."""
    diag = exc.diag
    constraint = diag.constraint_name or ""
    detail = _DETAIL_KEY.search(diag.message_detail or "")
    value = detail.group("value") if detail else ""
    rule = CONSTRAINTS.get(constraint)
    details = None
    if rule is None and isinstance(exc, pg.ForeignKeyViolation):
        deleting = _DELETE_ON.match(diag.message_primary or "")
        if deleting:
            rule = REFERENCED.get(deleting.group("table"))
            # Which reference held the row back: the operator's clue to what still uses it.
            details = {"constraint": constraint}
    if rule is None:
        log.warning("unmapped_constraint", constraint=constraint, sqlstate=diag.sqlstate)
        return ApiError(
            409,
            "CONFLICT",
            "the change conflicts with the current state; read the resource and try again",
            details={"constraint": constraint} if constraint else None,
        )
    return ApiError(rule.status, rule.code, rule.message.format(value=value), rule.field, details)
