"""dns: ask a resolver for one record type of a name; optionally compare the answers."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

import msgspec

from shared.checks.common import MAX_PORT, MAX_TIMEOUT_MS, KindInfo, stated
from shared.checks.fields import SpecError, is_dns_name, is_ip, validate_port, validate_timeout

DnsRecordType = Literal["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA"]
DNS_RECORD_TYPES: tuple[DnsRecordType, ...] = ("A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA")
# ``contains``: every expected value is among the answers; ``equals``: the answers are exactly
# the expected values (order does not matter).
DnsMatch = Literal["equals", "contains"]


class DnsCheck(
    msgspec.Struct, tag="dns", tag_field="type", forbid_unknown_fields=True, kw_only=True
):
    name: str
    record_type: DnsRecordType = "A"
    # Resolver to ask (an IP address); None = the agent's system resolver.
    server: str | None = None
    port: Annotated[int, stated(1, MAX_PORT)] = 53
    # Empty: any answer is up. A/AAAA compare as addresses, names case-insensitively without the
    # trailing dot; an MX value may be "10 mx.example.com" or just "mx.example.com", an SOA value
    # the whole record or just its primary name server.
    expected: list[str] = msgspec.field(default_factory=list)
    match: DnsMatch = "contains"
    timeout: Annotated[int, stated(1, MAX_TIMEOUT_MS)] = 5000


FIELD_CODES = {
    "/name": "INVALID_DNS_PARAMS",
    "/record_type": "INVALID_DNS_PARAMS",
    "/server": "INVALID_DNS_PARAMS",
    "/port": "INVALID_TCP_PORT",
    "/expected": "INVALID_DNS_PARAMS",
    "/match": "INVALID_DNS_PARAMS",
    "/timeout": "INVALID_TIMEOUT",
}

MAX_DNS_EXPECTED = 50
MAX_DNS_VALUE_LEN = 4096


def validate(spec: DnsCheck) -> None:
    if not is_dns_name(spec.name):
        raise SpecError("INVALID_DNS_PARAMS", f"dns name '{spec.name}' is not a DNS name", "/name")
    if spec.server is not None and not is_ip(spec.server):
        raise SpecError(
            "INVALID_DNS_PARAMS",
            f"dns server '{spec.server}' must be an IP address (or null for the system resolver)",
            "/server",
        )
    validate_port(spec.port, "dns")
    if len(spec.expected) > MAX_DNS_EXPECTED:
        raise SpecError(
            "INVALID_DNS_PARAMS", f"at most {MAX_DNS_EXPECTED} expected values", "/expected"
        )
    if spec.match == "equals" and not spec.expected:
        raise SpecError(
            "INVALID_DNS_PARAMS", 'match "equals" needs at least one expected value', "/expected"
        )
    for i, value in enumerate(spec.expected):
        _validate_value(spec.record_type, value, f"/expected/{i}")
    validate_timeout(spec.timeout)


def _validate_value(record_type: str, value: str, field: str) -> None:
    def bad(why: str) -> SpecError:
        return SpecError("INVALID_DNS_PARAMS", f"expected {record_type} value {why}", field)

    if not value.strip() or len(value) > MAX_DNS_VALUE_LEN:
        raise bad(f"must be 1 to {MAX_DNS_VALUE_LEN} characters")
    if record_type in ("A", "AAAA"):
        version = 4 if record_type == "A" else 6
        try:
            ok = ipaddress.ip_address(value).version == version
        except ValueError:
            ok = False
        if not ok:
            raise bad(f"'{value}' is not an IPv{version} address")
    elif record_type in ("CNAME", "NS") and not is_dns_name(value):
        raise bad(f"'{value}' is not a DNS name")
    elif record_type == "MX":
        parts = value.split()
        if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) <= 65535:
            parts = parts[1:]
        if len(parts) != 1 or not is_dns_name(parts[0]):
            raise bad(f"'{value}' is neither 'preference exchange' nor an exchange name")


KIND = KindInfo(
    struct=DnsCheck,
    validate=validate,
    field_codes=FIELD_CODES,
    min_interval=10,
    default_interval=60,
    secret_fields=(),
)
