"""http: request a URL; the status (and optionally body text and assertions) decide up or down.

The only kind with credentials: ``basic_auth``, ``bearer_token`` and the values of secret
headers are sealed at rest and redacted on reads.
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from shared.assertions import (
    MAX_ASSERTIONS,
    MAX_VALUE_LEN,
    NUMERIC_TYPES,
    OPERATORS,
    Assertion,
    assertion_number,
    compile_regex,
    expected_text,
    parse_json_path,
)
from shared.checks.common import KindInfo
from shared.checks.fields import (
    SpecError,
    reject_redaction_sentinel,
    validate_timeout,
    validate_url,
)

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
    # Names (case-insensitive) of ``headers`` whose values are credentials: sealed at rest and
    # redacted on reads like ``bearer_token``. Authorization, Proxy-Authorization and Cookie
    # values are always secret (ALWAYS_SECRET_HEADERS), listed here or not.
    secret_headers: list[str] = msgspec.field(default_factory=list)
    # Checks on the response (status, time, JSON values, headers, body); all must pass for up.
    assertions: list[Assertion] = msgspec.field(default_factory=list)


# Header values that are always credentials, whatever ``HttpCheck.secret_headers`` says.
ALWAYS_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
# Sealed-value field of a secret header: ``headers.<lowercased name>``.
SECRET_HEADER_PREFIX = "headers."


def secret_header_names(check: HttpCheck) -> frozenset[str]:
    """Lowercased names of the check's headers whose values are secrets."""
    return ALWAYS_SECRET_HEADERS | {name.lower() for name in check.secret_headers}


def is_secret_header(check: HttpCheck, name: str) -> bool:
    return name.lower() in secret_header_names(check)


FIELD_CODES = {
    "/url": "INVALID_URL_FORMAT",
    "/timeout": "INVALID_TIMEOUT",
    "/expected_status": "INVALID_STATUS_RANGE",
    "/headers": "INVALID_HEADER",
    "/assertions": "INVALID_ASSERTION",
}

# ``\Z``, not ``$``, which also matches before a final newline.
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
MAX_REDIRECTS = 20


def validate(spec: HttpCheck) -> None:
    # A header's value may be a credential too (secret headers are sealed under their name).
    reject_redaction_sentinel({"headers": spec.headers})
    validate_url(spec.url)
    validate_timeout(spec.timeout)
    _validate_status(spec.expected_status)
    if not 0 <= spec.max_redirects <= MAX_REDIRECTS:
        raise SpecError(
            "VALIDATION_ERROR",
            f"max_redirects must be between 0 and {MAX_REDIRECTS}",
            "/max_redirects",
        )
    for name, value in spec.headers.items():
        if not _HEADER_NAME.match(name):
            raise SpecError(
                "INVALID_HEADER", f"header name '{name}' is not a valid token", f"/headers/{name}"
            )
        if "\r" in value or "\n" in value:
            raise SpecError(
                "INVALID_HEADER", f"header '{name}' value contains a line break", f"/headers/{name}"
            )
    _validate_secret_headers(spec)
    _validate_assertions(spec)
    if isinstance(spec.basic_auth, str):
        raise SpecError(
            "VALIDATION_ERROR", 'basic_auth must be ["user", "pass"] or null', "/basic_auth"
        )
    if spec.basic_auth is not None and not spec.basic_auth[0]:
        raise SpecError("VALIDATION_ERROR", "basic_auth user must not be empty", "/basic_auth/0")
    if spec.bearer_token is not None and not spec.bearer_token.strip():
        raise SpecError("VALIDATION_ERROR", "bearer_token must not be empty", "/bearer_token")
    has_creds = (
        spec.basic_auth is not None
        or spec.bearer_token is not None
        or any(is_secret_header(spec, name) for name in spec.headers)
    )
    if has_creds and not spec.verify_tls and spec.url.lower().startswith("https:"):
        raise SpecError(
            "INVALID_TLS_CRED_COMBO",
            "verify_tls = false cannot be combined with basic_auth, bearer_token or a secret "
            "header over https",
            "/verify_tls",
        )


def _validate_status(expected: ExpectedStatus) -> None:
    field = "/expected_status/value"

    def ok(code: int) -> bool:
        return 100 <= code <= 599

    if isinstance(expected, ExactStatus):
        if not ok(expected.value):
            raise SpecError(
                "INVALID_STATUS_RANGE",
                f"status {expected.value} is not an HTTP status (100-599)",
                field,
            )
    elif isinstance(expected, RangeStatus):
        lo, hi = expected.value.min, expected.value.max
        if not (ok(lo) and ok(hi)):
            raise SpecError(
                "INVALID_STATUS_RANGE", "range bounds must be HTTP statuses (100-599)", field
            )
        if lo > hi:
            raise SpecError(
                "INVALID_STATUS_RANGE", f"range min {lo} is greater than max {hi}", field
            )
    elif isinstance(expected, OneOfStatus):
        if not expected.value:
            raise SpecError("INVALID_STATUS_RANGE", "one_of needs at least one status", field)
        for i, code in enumerate(expected.value):
            if not ok(code):
                raise SpecError(
                    "INVALID_STATUS_RANGE",
                    f"status {code} is not an HTTP status (100-599)",
                    f"{field}/{i}",
                )


def _validate_secret_headers(spec: HttpCheck) -> None:
    """Header names are case-insensitive: one spelling each, and every ``secret_headers`` entry
    names a header the check sends (a secret header without a value would protect nothing)."""
    seen: dict[str, str] = {}
    for name in spec.headers:
        first = seen.setdefault(name.lower(), name)
        if first != name:
            raise SpecError(
                "INVALID_HEADER",
                f"header '{name}' is given twice (also as '{first}'); header names are "
                "case-insensitive",
                f"/headers/{name}",
            )
    for i, name in enumerate(spec.secret_headers):
        if name.lower() not in seen:
            raise SpecError(
                "VALIDATION_ERROR",
                f"secret_headers names '{name}', which is not among the check's headers",
                f"/secret_headers/{i}",
            )


def _validate_assertions(spec: HttpCheck) -> None:
    if len(spec.assertions) > MAX_ASSERTIONS:
        raise SpecError("INVALID_ASSERTION", f"at most {MAX_ASSERTIONS} assertions", "/assertions")
    for i, a in enumerate(spec.assertions):
        _validate_assertion(i, a)


def _validate_assertion(i: int, a: Assertion) -> None:
    def bad(message: str, field: str) -> SpecError:
        return SpecError(
            "INVALID_ASSERTION", f"assertion {i}: {message}", f"/assertions/{i}{field}"
        )

    allowed = OPERATORS[a.type]
    if a.operator not in allowed:
        raise bad(
            f"{a.type} takes the operators {', '.join(allowed)}, not {a.operator}",
            "/operator",
        )
    if a.type == "json_path":
        if a.path is None:
            raise bad('a json_path assertion needs a "path" (e.g. "$.data.status")', "/path")
        try:
            parse_json_path(a.path)
        except ValueError as exc:
            raise bad(f"json path {a.path!r}: {exc}", "/path") from None
    elif a.path is not None:
        raise bad('"path" only applies to json_path assertions', "/path")
    if a.type == "header":
        if a.name is None:
            raise bad('a header assertion needs the header\'s "name"', "/name")
        if not _HEADER_NAME.match(a.name):
            raise bad(f"header name {a.name!r} is not a valid token", "/name")
    elif a.name is not None:
        raise bad('"name" only applies to header assertions', "/name")
    if a.type in NUMERIC_TYPES:
        if assertion_number(a) is None:
            what = "a whole number" if a.type == "status_code" else "a number >= 0"
            raise bad(f"{a.type} value must be {what}, got {a.value!r}", "/value")
        return
    text = expected_text(a)
    if len(text) > MAX_VALUE_LEN:
        raise bad(f"value is longer than {MAX_VALUE_LEN} characters", "/value")
    if a.operator == "regex":
        if not isinstance(a.value, str):
            raise bad("a regex value must be a string", "/value")
        try:
            compile_regex(a.value)
        except ValueError as exc:
            raise bad(f"regular expression: {exc}", "/value") from None
    elif a.operator in ("contains", "not_contains") and not text:
        raise bad(f"{a.operator} needs a non-empty value", "/value")


KIND = KindInfo(
    struct=HttpCheck,
    validate=validate,
    field_codes=FIELD_CODES,
    min_interval=10,
    default_interval=60,
    secret_fields=("basic_auth", "bearer_token"),
)
