"""tcp: can a TCP connection to ``host:port`` be opened within the timeout?"""

from __future__ import annotations

from typing import Annotated

import msgspec

from shared.checks.common import MAX_PORT, MAX_TIMEOUT_MS, KindInfo, stated
from shared.checks.fields import validate_host, validate_port, validate_timeout


class TcpCheck(
    msgspec.Struct, tag="tcp", tag_field="type", forbid_unknown_fields=True, kw_only=True
):
    host: str
    port: Annotated[int, stated(1, MAX_PORT)]
    timeout: Annotated[int, stated(1, MAX_TIMEOUT_MS)] = 2000


FIELD_CODES = {
    "/host": "INVALID_TCP_HOST",
    "/port": "INVALID_TCP_PORT",
    "/timeout": "INVALID_TIMEOUT",
}


def validate(spec: TcpCheck) -> None:
    validate_host(spec.host, "tcp")
    validate_port(spec.port, "tcp")
    validate_timeout(spec.timeout)


KIND = KindInfo(
    struct=TcpCheck,
    validate=validate,
    field_codes=FIELD_CODES,
    min_interval=10,
    default_interval=60,
    secret_fields=(),
)
