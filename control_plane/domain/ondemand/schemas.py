"""Request and response bodies of the on-demand checks."""

from __future__ import annotations

from typing import ClassVar

import msgspec

from control_plane.domain.results.schemas import CheckResultOut
from control_plane.domain.targets.schemas import FIELD_CHOICES, FIELD_CODES
from shared.checks import CheckSpec


class TestRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A check to run once, validated exactly as ``POST /targets`` validates its ``check``."""

    __field_codes__: ClassVar[dict[str, str]] = FIELD_CODES
    __field_choices__: ClassVar[dict[str, tuple[str, ...]]] = FIELD_CHOICES

    check: CheckSpec
    # The region whose agent runs the check.
    region: str = "default"
    # Optional: the interval you mean to create the target with; a problem with it (below the
    # floor, not longer than the timeout) is reported as a warning, not an error.
    interval: int | None = None


class TestResponse(msgspec.Struct, kw_only=True):
    # ``target_id`` of a one-shot test is the id of the (discarded) job.
    result: CheckResultOut
    # Whether the result met the check's expectations: its status is ``up`` and every assertion
    # in ``result.details.assertions`` passed.
    matched_expectations: bool
    warnings: list[str]


class CheckNowResponse(msgspec.Struct, kw_only=True):
    # One result per region of the target, by region id; each is stored like any result.
    results: list[CheckResultOut]
