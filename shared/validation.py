"""Semantic validation of check specs, shared by the control plane (on write) and the agent.

Errors carry the primary reference's stable codes and a JSON pointer relative to the spec.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from shared.assertions import (
    MAX_ASSERTIONS,
    MAX_VALUE_LEN,
    NUMERIC_TYPES,
    OPERATORS,
    assertion_number,
    compile_regex,
    expected_text,
    parse_json_path,
)
from shared.checks import (
    MAX_INTERVAL,
    MAX_TIMEOUT_MS,
    REDACTED,
    Assertion,
    CheckSpec,
    DnsCheck,
    DomainExpiryCheck,
    ExactStatus,
    ExpectedStatus,
    HeartbeatCheck,
    HttpCheck,
    IcmpCheck,
    OneOfStatus,
    RangeStatus,
    TcpCheck,
    TlsCertCheck,
    is_secret_header,
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
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
MAX_REDIRECTS = 20
MAX_DNS_EXPECTED = 50
MAX_DNS_VALUE_LEN = 4096
# warn_days / critical_days of tls_cert and domain_expiry: at most ten years.
MAX_EXPIRY_DAYS = 3650
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


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_dns_name(name: str) -> bool:
    """A DNS name (not an IP literal); underscores allowed (``_dmarc.example.com``)."""
    bare = name[:-1] if name.endswith(".") else name
    if not bare or len(bare) > 253 or _is_ip(bare):
        return False
    return all(_DNS_LABEL.match(label) for label in bare.split("."))


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


def _validate_host(host: str, kind: str) -> None:
    if not host.strip():
        raise SpecError("INVALID_TCP_HOST", f"{kind} host must not be empty", "/host")
    if host.startswith("[") and host.endswith("]"):
        valid = _is_ipv6(host[1:-1])  # brackets only ever wrap an IPv6 literal
    else:
        valid = is_valid_hostname(host)
    if not valid:
        raise SpecError(
            "INVALID_TCP_HOST", f"{kind} host '{host}' is not a valid hostname or IP", "/host"
        )


def _validate_port(port: int, kind: str) -> None:
    if not 1 <= port <= 65535:
        raise SpecError(
            "INVALID_TCP_PORT", f"{kind} port must be between 1 and 65535, got {port}", "/port"
        )


def _validate_tcp(spec: TcpCheck) -> None:
    _validate_host(spec.host, "tcp")
    _validate_port(spec.port, "tcp")
    _validate_timeout(spec.timeout)


def _validate_dns_value(record_type: str, value: str, field: str) -> None:
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


def _validate_dns(spec: DnsCheck) -> None:
    if not is_dns_name(spec.name):
        raise SpecError("INVALID_DNS_PARAMS", f"dns name '{spec.name}' is not a DNS name", "/name")
    if spec.server is not None and not _is_ip(spec.server):
        raise SpecError(
            "INVALID_DNS_PARAMS",
            f"dns server '{spec.server}' must be an IP address (or null for the system resolver)",
            "/server",
        )
    _validate_port(spec.port, "dns")
    if len(spec.expected) > MAX_DNS_EXPECTED:
        raise SpecError(
            "INVALID_DNS_PARAMS", f"at most {MAX_DNS_EXPECTED} expected values", "/expected"
        )
    if spec.match == "equals" and not spec.expected:
        raise SpecError(
            "INVALID_DNS_PARAMS", 'match "equals" needs at least one expected value', "/expected"
        )
    for i, value in enumerate(spec.expected):
        _validate_dns_value(spec.record_type, value, f"/expected/{i}")
    _validate_timeout(spec.timeout)


def _validate_days(code: str, kind: str, warn_days: int, critical_days: int) -> None:
    if not 0 <= critical_days <= MAX_EXPIRY_DAYS:
        raise SpecError(
            code,
            f"{kind} critical_days must be between 0 and {MAX_EXPIRY_DAYS}, got {critical_days}",
            "/critical_days",
        )
    if not 1 <= warn_days <= MAX_EXPIRY_DAYS:
        raise SpecError(
            code,
            f"{kind} warn_days must be between 1 and {MAX_EXPIRY_DAYS}, got {warn_days}",
            "/warn_days",
        )
    if warn_days <= critical_days:
        raise SpecError(
            code,
            f"{kind} warn_days must be > critical_days ({warn_days} <= {critical_days})",
            "/warn_days",
            {"warn_days": warn_days, "critical_days": critical_days},
        )


def _validate_domain(domain: str) -> None:
    name = domain.rstrip(".")
    if _is_ip(name) or not is_valid_hostname(name):
        raise SpecError(
            "INVALID_DOMAIN_PARAMS",
            f"domain_expiry domain '{domain}' is not a domain name (ASCII or punycode labels)",
            "/domain",
        )
    if "." not in name:
        raise SpecError(
            "INVALID_DOMAIN_PARAMS",
            f"domain_expiry domain must contain a TLD label (no dot in '{domain}')",
            "/domain",
        )


# A heartbeat's grace: nothing in the monitoring loop is finer than the 10 s interval floor.
MIN_HEARTBEAT_GRACE = 10


def _validate_heartbeat(spec: HeartbeatCheck) -> None:
    if not MIN_HEARTBEAT_GRACE <= spec.grace <= MAX_INTERVAL:
        raise SpecError(
            "INVALID_HEARTBEAT_PARAMS",
            f"heartbeat grace must be between {MIN_HEARTBEAT_GRACE} and {MAX_INTERVAL} seconds, "
            f"got {spec.grace}",
            "/grace",
        )


MAX_ICMP_COUNT = 10
MIN_ICMP_INTERVAL_MS = 10
MAX_ICMP_INTERVAL_MS = 5000
# The agent's gap between two echo requests when the spec names none.
DEFAULT_ICMP_INTERVAL_MS = 200


def _validate_icmp(spec: IcmpCheck) -> None:
    _validate_host(spec.host, "icmp")
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
    _validate_timeout(spec.timeout)
    gap = DEFAULT_ICMP_INTERVAL_MS if spec.interval is None else spec.interval
    if (spec.count - 1) * gap >= spec.timeout:
        raise SpecError(
            "INVALID_ICMP_PARAMS",
            f"sending {spec.count} packets {gap} ms apart takes longer than the timeout "
            f"({spec.timeout} ms)",
            "/timeout",
            {"count": spec.count, "interval": gap, "timeout": spec.timeout},
        )


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
    elif isinstance(spec, DnsCheck):
        _validate_dns(spec)
    elif isinstance(spec, TlsCertCheck):
        _validate_host(spec.host, "tls_cert")
        _validate_port(spec.port, "tls_cert")
        if spec.server_name is not None and not is_dns_name(spec.server_name):
            raise SpecError(
                "INVALID_TLS_CERT_PARAMS",
                f"server_name '{spec.server_name}' is not a DNS name",
                "/server_name",
            )
        _validate_days("INVALID_TLS_CERT_PARAMS", "tls_cert", spec.warn_days, spec.critical_days)
        _validate_timeout(spec.timeout)
    elif isinstance(spec, DomainExpiryCheck):
        _validate_domain(spec.domain)
        _validate_days("INVALID_DOMAIN_PARAMS", "domain_expiry", spec.warn_days, spec.critical_days)
        _validate_timeout(spec.timeout)
    elif isinstance(spec, HeartbeatCheck):
        _validate_heartbeat(spec)
    elif isinstance(spec, IcmpCheck):
        _validate_icmp(spec)


def _secret_view(spec: CheckSpec) -> dict[str, Any]:
    if isinstance(spec, HttpCheck):
        return {
            "basic_auth": spec.basic_auth,
            "bearer_token": spec.bearer_token,
            "headers": spec.headers,
        }
    return {}
