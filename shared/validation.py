"""Semantic validation of check specs, shared by the control plane (on write) and the agent.

Errors carry the primary reference's stable codes and a JSON pointer relative to the spec.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from shared.checks import (
    MAX_TIMEOUT_MS,
    REDACTED,
    CheckSpec,
    ExactStatus,
    ExpectedStatus,
    HttpCheck,
    OneOfStatus,
    RangeStatus,
    TcpCheck,
)


class SpecError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        field: str | None = None,
        details: dict[str, Any] | None = None,
        status: int = 400,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.details = details
        self.status = status


_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
MAX_REDIRECTS = 20
MAX_URL_LEN = 2048


def is_valid_hostname(host: str) -> bool:
    if not host or len(host) > 253:
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    return all(_LABEL.match(label) for label in labels)


def _is_ipv6(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv6Address)
    except ValueError:
        return False


def find_redaction_sentinel(value: Any, pointer: str = "") -> str | None:
    """Return the JSON pointer of the first string equal to the redaction sentinel, if any."""
    if isinstance(value, str):
        return pointer if value == REDACTED else None
    if isinstance(value, dict):
        for k, v in value.items():
            found = find_redaction_sentinel(v, f"{pointer}/{k}")
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found = find_redaction_sentinel(v, f"{pointer}/{i}")
            if found is not None:
                return found
    return None


def _validate_timeout(timeout: int) -> None:
    if not 1 <= timeout <= MAX_TIMEOUT_MS:
        raise SpecError(
            "INVALID_TIMEOUT",
            f"timeout must be between 1 and {MAX_TIMEOUT_MS} ms, got {timeout}",
            "/timeout",
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


def _validate_url(url: str) -> None:
    if not url or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise SpecError(
            "INVALID_URL_FORMAT", "url must be non-empty and contain no whitespace", "/url"
        )
    if len(url) > MAX_URL_LEN:
        raise SpecError(
            "INVALID_URL_FORMAT", f"url is longer than {MAX_URL_LEN} characters", "/url"
        )
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise SpecError("INVALID_URL_FORMAT", f"url is malformed: {exc}", "/url") from None
    scheme = parts.scheme.lower()
    if not scheme:
        raise SpecError("INVALID_URL_FORMAT", "url must be absolute (http:// or https://)", "/url")
    if scheme not in ("http", "https"):
        raise SpecError(
            "INVALID_URL_SCHEME", f"url scheme '{scheme}' not allowed — only http and https", "/url"
        )
    if parts.username is not None or parts.password is not None:
        raise SpecError(
            "INVALID_URL_FORMAT", "credentials in the url are not allowed; use basic_auth", "/url"
        )
    host = parts.hostname
    if not host:
        raise SpecError("INVALID_URL_FORMAT", "url has no host", "/url")
    try:
        port = parts.port
    except ValueError:
        raise SpecError("INVALID_URL_FORMAT", "url has an invalid port", "/url") from None
    if port == 0:
        raise SpecError("INVALID_URL_FORMAT", "url port must be between 1 and 65535", "/url")
    if not is_valid_hostname(host):
        raise SpecError("INVALID_URL_FORMAT", f"url host '{host}' is not a valid hostname", "/url")


def _validate_http(spec: HttpCheck) -> None:
    _validate_url(spec.url)
    _validate_timeout(spec.timeout)
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
    if isinstance(spec.basic_auth, str):
        raise SpecError(
            "VALIDATION_ERROR", 'basic_auth must be ["user", "pass"] or null', "/basic_auth"
        )
    if spec.basic_auth is not None and not spec.basic_auth[0]:
        raise SpecError("VALIDATION_ERROR", "basic_auth user must not be empty", "/basic_auth/0")
    if spec.bearer_token is not None and not spec.bearer_token.strip():
        raise SpecError("VALIDATION_ERROR", "bearer_token must not be empty", "/bearer_token")
    has_creds = spec.basic_auth is not None or spec.bearer_token is not None
    if has_creds and not spec.verify_tls and spec.url.lower().startswith("https:"):
        raise SpecError(
            "INVALID_TLS_CRED_COMBO",
            "verify_tls = false cannot be combined with basic_auth or bearer_token over https",
            "/verify_tls",
        )


def _validate_tcp(spec: TcpCheck) -> None:
    if not spec.host.strip():
        raise SpecError("INVALID_TCP_HOST", "tcp host must not be empty", "/host")
    if spec.host.startswith("[") and spec.host.endswith("]"):
        valid = _is_ipv6(spec.host[1:-1])  # brackets only ever wrap an IPv6 literal
    else:
        valid = is_valid_hostname(spec.host)
    if not valid:
        raise SpecError(
            "INVALID_TCP_HOST", f"tcp host '{spec.host}' is not a valid hostname or IP", "/host"
        )
    if not 1 <= spec.port <= 65535:
        raise SpecError(
            "INVALID_TCP_PORT", f"tcp port must be between 1 and 65535, got {spec.port}", "/port"
        )
    _validate_timeout(spec.timeout)


def validate_check(spec: CheckSpec) -> None:
    """Raise ``SpecError`` on the first problem; pointers are relative to the spec."""
    sentinel = find_redaction_sentinel(_secret_view(spec))
    if sentinel is not None:
        name = sentinel.strip("/").split("/")[0]
        raise SpecError(
            "REDACTION_SENTINEL",
            f"{name} contains redaction sentinel — re-supply the real credential",
            sentinel,
        )
    if isinstance(spec, HttpCheck):
        _validate_http(spec)
    elif isinstance(spec, TcpCheck):
        _validate_tcp(spec)


def _secret_view(spec: CheckSpec) -> dict[str, Any]:
    if isinstance(spec, HttpCheck):
        return {
            "basic_auth": spec.basic_auth,
            "bearer_token": spec.bearer_token,
            "headers": spec.headers,
        }
    return {}
