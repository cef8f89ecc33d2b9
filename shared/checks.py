"""Check specs: a tagged union on ``type``. A kind is one lowercase string used everywhere."""

from __future__ import annotations

from typing import Literal

import msgspec

REDACTED = "***"

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class StatusRange(msgspec.Struct, forbid_unknown_fields=True):
    min: int
    max: int


class ExactStatus(msgspec.Struct, tag="exact", tag_field="kind", forbid_unknown_fields=True):
    value: int


class RangeStatus(msgspec.Struct, tag="range", tag_field="kind", forbid_unknown_fields=True):
    value: StatusRange


class OneOfStatus(msgspec.Struct, tag="one_of", tag_field="kind", forbid_unknown_fields=True):
    value: list[int]


ExpectedStatus = ExactStatus | RangeStatus | OneOfStatus


AssertionType = Literal["status_code", "response_time", "json_path", "header", "body"]
AssertionOperator = Literal[
    "equals", "not_equals", "greater_than", "less_than", "contains", "not_contains", "regex"
]


class Assertion(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One check on an HTTP response, e.g. ``{"type": "json_path", "path": "$.status",
    "operator": "equals", "value": "ok"}``. The operators each type takes, and what ``value``
    must be, are in ``shared.assertions``; ``value`` is kept as written ("200" or 200)."""

    type: AssertionType
    operator: AssertionOperator
    value: str | int | float | bool
    # json_path only: where in the JSON body ($, $.a.b, $.a[0].b, $['key with space']).
    path: str | None = None
    # header only: the response header's name (case-insensitive).
    name: str | None = None


def status_matches(expected: ExpectedStatus, status: int) -> bool:
    if isinstance(expected, ExactStatus):
        return status == expected.value
    if isinstance(expected, RangeStatus):
        return expected.value.min <= status <= expected.value.max
    return status in expected.value


class HttpCheck(
    msgspec.Struct, tag="http", tag_field="type", forbid_unknown_fields=True, kw_only=True
):
    url: str
    method: HttpMethod = "GET"
    # Total request budget in milliseconds.
    timeout: int = 5000
    follow_redirects: bool = False
    max_redirects: int = 0
    expected_status: ExpectedStatus = msgspec.field(default_factory=lambda: ExactStatus(200))
    expected_body_contains: str | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    body: str | None = None
    verify_tls: bool = True
    # ["user", "pass"]; the string form only ever carries the redaction sentinel on reads.
    basic_auth: tuple[str, str] | str | None = None
    bearer_token: str | None = None
    # Names (case-insensitive) of ``headers`` whose values are credentials: sealed at rest and
    # redacted on reads like ``bearer_token``. Authorization, Proxy-Authorization and Cookie
    # values are always secret (ALWAYS_SECRET_HEADERS), listed here or not.
    secret_headers: list[str] = msgspec.field(default_factory=list)
    # Checks on the response (status, time, JSON values, headers, body); all must pass for up.
    assertions: list[Assertion] = msgspec.field(default_factory=list)


class TcpCheck(
    msgspec.Struct, tag="tcp", tag_field="type", forbid_unknown_fields=True, kw_only=True
):
    host: str
    port: int
    timeout: int = 2000


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
    port: int = 53
    # Empty: any answer is up. A/AAAA compare as addresses, names case-insensitively without the
    # trailing dot; an MX value may be "10 mx.example.com" or just "mx.example.com", an SOA value
    # the whole record or just its primary name server.
    expected: list[str] = msgspec.field(default_factory=list)
    match: DnsMatch = "contains"
    timeout: int = 5000


class TlsCertCheck(
    msgspec.Struct, tag="tls_cert", tag_field="type", forbid_unknown_fields=True, kw_only=True
):
    host: str
    port: int = 443
    # SNI override; None sends ``host``.
    server_name: str | None = None
    warn_days: int = 14
    critical_days: int = 7
    timeout: int = 5000


class DomainExpiryCheck(
    msgspec.Struct, tag="domain_expiry", tag_field="type", forbid_unknown_fields=True, kw_only=True
):
    domain: str
    warn_days: int = 30
    critical_days: int = 7
    timeout: int = 10000


class HeartbeatCheck(
    msgspec.Struct, tag="heartbeat", tag_field="type", forbid_unknown_fields=True, kw_only=True
):
    """Push monitoring: the job calls the target's ping URL every ``interval`` seconds; it is down
    once a ping is more than ``grace`` seconds late. No agent ever runs it (see PUSH_KINDS)."""

    grace: int = 60


class IcmpCheck(
    msgspec.Struct, tag="icmp", tag_field="type", forbid_unknown_fields=True, kw_only=True
):
    """Ping: ``count`` ICMP echo requests; loss and round-trip times decide the status."""

    host: str
    count: int = 3
    # Budget for the whole check (every packet and its reply), in milliseconds.
    timeout: int = 2000
    # Milliseconds between two echo requests; None = the agent's default (200 ms).
    interval: int | None = None


CheckSpec = (
    HttpCheck | TcpCheck | DnsCheck | TlsCertCheck | DomainExpiryCheck | HeartbeatCheck | IcmpCheck
)

# Kinds the control plane receives instead of an agent probing them: never leased, no runner.
PUSH_KINDS = frozenset({"heartbeat"})

# Header values that are always credentials, whatever ``HttpCheck.secret_headers`` says.
ALWAYS_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
# Sealed-value field of a secret header: ``headers.<lowercased name>``.
SECRET_HEADER_PREFIX = "headers."


def secret_header_names(check: HttpCheck) -> frozenset[str]:
    """Lowercased names of the check's headers whose values are secrets."""
    return ALWAYS_SECRET_HEADERS | {name.lower() for name in check.secret_headers}


def is_secret_header(check: HttpCheck, name: str) -> bool:
    return name.lower() in secret_header_names(check)


# Fields of a check that hold credentials: sealed at rest, redacted on every read. Secret header
# values (``secret_header_names``) are sealed and redacted too, each under its own field.
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "http": ("basic_auth", "bearer_token"),
    "tcp": (),
    "dns": (),
    "tls_cert": (),
    "domain_expiry": (),
    "heartbeat": (),
    "icmp": (),
}

# Interval floors and defaults per kind, in seconds.
KIND_MIN_INTERVAL: dict[str, int] = {
    "http": 10,
    "tcp": 10,
    "dns": 10,
    "tls_cert": 3600,
    "domain_expiry": 3600,
    # The expected period between pings.
    "heartbeat": 10,
    "icmp": 10,
}
KIND_DEFAULT_INTERVAL: dict[str, int] = {
    "http": 60,
    "tcp": 60,
    "dns": 60,
    "tls_cert": 86400,
    "domain_expiry": 86400,
    "heartbeat": 60,
    "icmp": 60,
}
ABSOLUTE_MIN_INTERVAL = 10
MAX_INTERVAL = 7 * 86400
MAX_TIMEOUT_MS = 60_000


def check_kind(spec: CheckSpec) -> str:
    kind = type(spec).__struct_config__.tag
    assert isinstance(kind, str)
    return kind
