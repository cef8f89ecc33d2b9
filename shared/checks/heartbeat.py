"""heartbeat: push monitoring. The monitored job pings the control plane; no agent runs it."""

from __future__ import annotations

from typing import Annotated

import msgspec

from shared.checks.common import MAX_INTERVAL, KindInfo
from shared.checks.fields import SpecError

# A heartbeat's grace: nothing in the monitoring loop is finer than the 10 s interval floor.
MIN_HEARTBEAT_GRACE = 10


class HeartbeatCheck(
    msgspec.Struct, tag="heartbeat", tag_field="type", forbid_unknown_fields=True, kw_only=True
):
    """Push monitoring: the job calls the target's ping URL every ``interval`` seconds; it is down
    once a ping is more than ``grace`` seconds late. No agent ever runs it (see PUSH_KINDS)."""

    # The bounds are stated for the OpenAPI document; ``validate`` enforces them with the kind's
    # own code.
    grace: Annotated[
        int,
        msgspec.Meta(
            extra_json_schema={"extra": {"minimum": MIN_HEARTBEAT_GRACE, "maximum": MAX_INTERVAL}}
        ),
    ] = 60


FIELD_CODES = {"/grace": "INVALID_HEARTBEAT_PARAMS"}


def validate(spec: HeartbeatCheck) -> None:
    if not MIN_HEARTBEAT_GRACE <= spec.grace <= MAX_INTERVAL:
        raise SpecError(
            "INVALID_HEARTBEAT_PARAMS",
            f"heartbeat grace must be between {MIN_HEARTBEAT_GRACE} and {MAX_INTERVAL} seconds, "
            f"got {spec.grace}",
            "/grace",
        )


# The interval is the expected period between pings.
KIND = KindInfo(
    struct=HeartbeatCheck,
    validate=validate,
    field_codes=FIELD_CODES,
    min_interval=10,
    default_interval=60,
    secret_fields=(),
    push=True,
)
