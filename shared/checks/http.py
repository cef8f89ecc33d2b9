"""http: request a URL; the status (and optionally body text and assertions) decide up or down.

The only kind with credentials: ``basic_auth``, ``bearer_token`` and the values of secret
headers are sealed at rest and redacted on reads.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

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
from shared.checks.common import MAX_TIMEOUT_MS, KindInfo, stated
from shared.checks.fields import (
    SpecError,
    reject_redaction_sentinel,
    validate_timeout,
    validate_url,
)

MAX_REDIRECTS = 20

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
    timeout: Annotated[int, stated(1, MAX_TIMEOUT_MS)] = 5000
    follow_redirects: bool = False
    max_redirects: Annotated[int, stated(0, MAX_REDIRECTS)] = 0
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

# Size limits of the free-form fields (the control plane refuses a spec past them on write; the
# agent runs only specs that passed). Enough for any real probe, small enough that a spec stays
# a few KiB to seal, store and lease.
MAX_HEADERS = 50
"""Request headers a check may send (``INVALID_HEADER``); ``secret_headers`` names at most as
many."""
MAX_HEADER_NAME_LEN = 256
"""Longest header name (``INVALID_HEADER``)."""
MAX_HEADER_VALUE_LEN = 8 * 1024
"""Longest header value, 8 KiB (``INVALID_HEADER``): what common servers accept in one header
line."""
MAX_CREDENTIAL_LEN = 4 * 1024
"""Longest ``bearer_token``, and ``basic_auth`` user or password, 4 KiB (``VALIDATION_ERROR``):
each becomes an Authorization header."""
MAX_BODY_LEN = 64 * 1024
"""Longest request ``body``, 64 KiB (``VALIDATION_ERROR``): a probe posts a small payload."""
MAX_EXPECTED_BODY_LEN = 4 * 1024
"""Longest ``expected_body_contains``, 4 KiB (``VALIDATION_ERROR``), like an assertion's value."""
MAX_ONE_OF = 50
"""Most statuses in an ``expected_status`` of kind ``one_of`` (``INVALID_STATUS_RANGE``)."""


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
    _validate_headers(spec)
    _validate_secret_headers(spec)
    _validate_assertions(spec)
    _validate_texts(spec)
    _validate_credentials(spec)
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


def _validate_headers(spec: HttpCheck) -> None:
    if len(spec.headers) > MAX_HEADERS:
        raise SpecError("INVALID_HEADER", f"at most {MAX_HEADERS} headers", "/headers")
    for name, value in spec.headers.items():
        field = f"/headers/{_pointer_part(name)}"
        if len(name) > MAX_HEADER_NAME_LEN or not _HEADER_NAME.match(name):
            shown = name if len(name) <= 100 else name[:100] + "…"
            raise SpecError(
                "INVALID_HEADER",
                f"header name '{shown}' is not a valid token of at most {MAX_HEADER_NAME_LEN} "
                "characters",
                field,
            )
        if "\r" in value or "\n" in value:
            raise SpecError("INVALID_HEADER", f"header '{name}' value contains a line break", field)
        if len(value) > MAX_HEADER_VALUE_LEN:
            raise SpecError(
                "INVALID_HEADER",
                f"header '{name}' value is longer than {MAX_HEADER_VALUE_LEN} characters",
                field,
            )


def _pointer_part(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _validate_texts(spec: HttpCheck) -> None:
    if spec.body is not None and len(spec.body) > MAX_BODY_LEN:
        raise SpecError(
            "VALIDATION_ERROR", f"body is longer than {MAX_BODY_LEN} characters", "/body"
        )
    expected = spec.expected_body_contains
    if expected is not None and len(expected) > MAX_EXPECTED_BODY_LEN:
        raise SpecError(
            "VALIDATION_ERROR",
            f"expected_body_contains is longer than {MAX_EXPECTED_BODY_LEN} characters",
            "/expected_body_contains",
        )


def _validate_credentials(spec: HttpCheck) -> None:
    """Credentials that could never be sent are refused here rather than failing every check."""
    if isinstance(spec.basic_auth, str):
        raise SpecError(
            "VALIDATION_ERROR", 'basic_auth must be ["user", "pass"] or null', "/basic_auth"
        )
    if spec.basic_auth is not None and spec.bearer_token is not None:
        raise SpecError(
            "VALIDATION_ERROR",
            "basic_auth and bearer_token cannot both be set: a request has one Authorization "
            "header",
            "/bearer_token",
        )
    if spec.basic_auth is not None:
        user, password = spec.basic_auth
        if not user:
            raise SpecError(
                "VALIDATION_ERROR", "basic_auth user must not be empty", "/basic_auth/0"
            )
        if ":" in user:
            raise SpecError(
                "VALIDATION_ERROR",
                "basic_auth user must not contain ':' (it separates user and password)",
                "/basic_auth/0",
            )
        for i, part in enumerate((user, password)):
            if len(part) > MAX_CREDENTIAL_LEN:
                raise SpecError(
                    "VALIDATION_ERROR",
                    f"basic_auth {('user', 'password')[i]} is longer than {MAX_CREDENTIAL_LEN} "
                    "characters",
                    f"/basic_auth/{i}",
                )
    token = spec.bearer_token
    if token is not None:
        if not token.strip():
            raise SpecError("VALIDATION_ERROR", "bearer_token must not be empty", "/bearer_token")
        if "\r" in token or "\n" in token:
            raise SpecError(
                "VALIDATION_ERROR", "bearer_token must not contain a line break", "/bearer_token"
            )
        if len(token) > MAX_CREDENTIAL_LEN:
            raise SpecError(
                "VALIDATION_ERROR",
                f"bearer_token is longer than {MAX_CREDENTIAL_LEN} characters",
                "/bearer_token",
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
        if len(expected.value) > MAX_ONE_OF:
            raise SpecError("INVALID_STATUS_RANGE", f"one_of takes at most {MAX_ONE_OF}", field)
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
    if len(spec.secret_headers) > MAX_HEADERS:
        raise SpecError(
            "VALIDATION_ERROR", f"secret_headers names at most {MAX_HEADERS}", "/secret_headers"
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
