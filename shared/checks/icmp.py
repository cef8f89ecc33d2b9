"""icmp: ping ``host``; packet loss and round-trip times decide the status."""

from __future__ import annotations

from typing import Annotated

import msgspec

from shared.checks.common import MAX_TIMEOUT_MS, KindInfo, stated
from shared.checks.fields import SpecError, validate_host, validate_timeout

MAX_ICMP_COUNT = 10
MIN_ICMP_INTERVAL_MS = 10
MAX_ICMP_INTERVAL_MS = 5000


class IcmpCheck(
    msgspec.Struct, tag="icmp", tag_field="type", forbid_unknown_fields=True, kw_only=True
):
    """Ping: ``count`` ICMP echo requests; loss and round-trip times decide the status."""

    host: str
    count: Annotated[int, stated(1, MAX_ICMP_COUNT)] = 3
    # Budget for the whole check (every packet and its reply), in milliseconds.
    timeout: Annotated[int, stated(1, MAX_TIMEOUT_MS)] = 2000
    # Milliseconds between two echo requests; None = the agent's default (200 ms).
    interval: Annotated[int, stated(MIN_ICMP_INTERVAL_MS, MAX_ICMP_INTERVAL_MS)] | None = None


FIELD_CODES = {
    "/host": "INVALID_TCP_HOST",
    "/count": "INVALID_ICMP_PARAMS",
    "/interval": "INVALID_ICMP_PARAMS",
    "/timeout": "INVALID_TIMEOUT",
}

# The agent's gap between two echo requests when the spec names none.
DEFAULT_ICMP_INTERVAL_MS = 200


def validate(spec: IcmpCheck) -> None:
    validate_host(spec.host, "icmp")
    if not 1 <= spec.count <= MAX_ICMP_COUNT:
        raise SpecError(
            "INVALID_ICMP_PARAMS",
            f"icmp count must be between 1 and {MAX_ICMP_COUNT}, got {spec.count}",
            "/count",
        )
    if spec.interval is not None and not (
        MIN_ICMP_INTERVAL_MS <= spec.interval <= MAX_ICMP_INTERVAL_MS
    ):
        raise SpecError(
            "INVALID_ICMP_PARAMS",
            f"icmp interval must be between {MIN_ICMP_INTERVAL_MS} and {MAX_ICMP_INTERVAL_MS} ms, "
            f"got {spec.interval}",
            "/interval",
        )
    validate_timeout(spec.timeout)
    gap = DEFAULT_ICMP_INTERVAL_MS if spec.interval is None else spec.interval
    if (spec.count - 1) * gap >= spec.timeout:
        raise SpecError(
            "INVALID_ICMP_PARAMS",
            f"sending {spec.count} packets {gap} ms apart takes longer than the timeout "
            f"({spec.timeout} ms)",
            "/timeout",
            {"count": spec.count, "interval": gap, "timeout": spec.timeout},
        )


KIND = KindInfo(
    struct=IcmpCheck,
    validate=validate,
    field_codes=FIELD_CODES,
    min_interval=10,
    default_interval=60,
    secret_fields=(),
)
