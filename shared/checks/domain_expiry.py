"""domain_expiry: ask the registry (RDAP) when a domain's registration expires."""

from __future__ import annotations

from typing import Annotated

import msgspec

from shared.checks.common import MAX_TIMEOUT_MS, KindInfo, stated
from shared.checks.fields import (
    MAX_EXPIRY_DAYS,
    SpecError,
    is_ip,
    is_valid_hostname,
    validate_days,
    validate_timeout,
)


class DomainExpiryCheck(
    msgspec.Struct, tag="domain_expiry", tag_field="type", forbid_unknown_fields=True, kw_only=True
):
    domain: str
    warn_days: Annotated[int, stated(1, MAX_EXPIRY_DAYS)] = 30
    critical_days: Annotated[int, stated(0, MAX_EXPIRY_DAYS)] = 7
    timeout: Annotated[int, stated(1, MAX_TIMEOUT_MS)] = 10000


# warn_days / critical_days are absent: tls_cert has them too with another code (see there).
FIELD_CODES = {
    "/domain": "INVALID_DOMAIN_PARAMS",
    "/timeout": "INVALID_TIMEOUT",
}


def validate(spec: DomainExpiryCheck) -> None:
    name = spec.domain.rstrip(".")
    if is_ip(name) or not is_valid_hostname(name):
        raise SpecError(
            "INVALID_DOMAIN_PARAMS",
            f"domain_expiry domain '{spec.domain}' is not a domain name (ASCII or punycode labels)",
            "/domain",
        )
    if "." not in name:
        raise SpecError(
            "INVALID_DOMAIN_PARAMS",
            f"domain_expiry domain must contain a TLD label (no dot in '{spec.domain}')",
            "/domain",
        )
    validate_days("INVALID_DOMAIN_PARAMS", "domain_expiry", spec.warn_days, spec.critical_days)
    validate_timeout(spec.timeout)


KIND = KindInfo(
    struct=DomainExpiryCheck,
    validate=validate,
    field_codes=FIELD_CODES,
    min_interval=3600,
    default_interval=86400,
    secret_fields=(),
)
