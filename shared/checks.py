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


class TcpCheck(
    msgspec.Struct, tag="tcp", tag_field="type", forbid_unknown_fields=True, kw_only=True
):
    host: str
    port: int
    timeout: int = 2000


CheckSpec = HttpCheck | TcpCheck

# Fields of a check that hold credentials: sealed at rest, redacted on every read.
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "http": ("basic_auth", "bearer_token"),
    "tcp": (),
}

# Interval floors and defaults per kind, in seconds.
KIND_MIN_INTERVAL: dict[str, int] = {
    "http": 10,
    "tcp": 10,
    "dns": 10,
    "tls_cert": 3600,
    "domain_expiry": 3600,
}
KIND_DEFAULT_INTERVAL: dict[str, int] = {
    "http": 60,
    "tcp": 60,
    "dns": 60,
    "tls_cert": 86400,
    "domain_expiry": 86400,
}
ABSOLUTE_MIN_INTERVAL = 10
MAX_INTERVAL = 7 * 86400
MAX_TIMEOUT_MS = 60_000


def check_kind(spec: CheckSpec) -> str:
    kind = type(spec).__struct_config__.tag
    assert isinstance(kind, str)
    return kind
