"""tls_cert: handshake with ``host:port`` and map the days left on its certificate."""

from __future__ import annotations

from typing import Annotated

import msgspec

from shared.checks.common import MAX_PORT, MAX_TIMEOUT_MS, KindInfo, stated
from shared.checks.fields import (
    MAX_EXPIRY_DAYS,
    SpecError,
    is_dns_name,
    validate_days,
    validate_host,
    validate_port,
    validate_timeout,
)


class TlsCertCheck(
    msgspec.Struct, tag="tls_cert", tag_field="type", forbid_unknown_fields=True, kw_only=True
):
    host: str
    port: Annotated[int, stated(1, MAX_PORT)] = 443
    # SNI override; None sends ``host``.
    server_name: str | None = None
    warn_days: Annotated[int, stated(1, MAX_EXPIRY_DAYS)] = 14
    critical_days: Annotated[int, stated(0, MAX_EXPIRY_DAYS)] = 7
    timeout: Annotated[int, stated(1, MAX_TIMEOUT_MS)] = 5000


# warn_days / critical_days are absent: domain_expiry has them too with another code, and a
# wrong type is reported before the kind is known (the control plane's map is one for all kinds).
FIELD_CODES = {
    "/host": "INVALID_TCP_HOST",
    "/port": "INVALID_TCP_PORT",
    "/server_name": "INVALID_TLS_CERT_PARAMS",
    "/timeout": "INVALID_TIMEOUT",
}


def validate(spec: TlsCertCheck) -> None:
    validate_host(spec.host, "tls_cert")
    validate_port(spec.port, "tls_cert")
    if spec.server_name is not None and not is_dns_name(spec.server_name):
        raise SpecError(
            "INVALID_TLS_CERT_PARAMS",
            f"server_name '{spec.server_name}' is not a DNS name",
            "/server_name",
        )
    validate_days("INVALID_TLS_CERT_PARAMS", "tls_cert", spec.warn_days, spec.critical_days)
    validate_timeout(spec.timeout)


KIND = KindInfo(
    struct=TlsCertCheck,
    validate=validate,
    field_codes=FIELD_CODES,
    min_interval=3600,
    default_interval=86400,
    secret_fields=(),
)
