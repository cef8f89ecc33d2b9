"""Validation of the fields several check kinds share: hosts, URLs, ports, timeouts, expiry
thresholds, and credentials that still hold the redaction sentinel.

A host that spells an IPv4 address any other way than its dotted quad (``127.1``, ``0x7f.1``,
``2130706433``, ``127.0.0.1.``) is refused, naming the address: the resolver reads it as that
address, so the tenant should see (and the SSRF check judge) what will really be probed.

Errors carry the primary reference's stable codes and a JSON pointer relative to the spec; each
kind's own rules are in its module (``shared.checks.<kind>``).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from shared.checks.common import MAX_TIMEOUT_MS, REDACTED
from shared.netguard import ip_literal


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


# ``\Z``, not ``$``: ``$`` also matches before a final newline, and "example.com\n" is no name.
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)\Z")
# warn_days / critical_days of tls_cert and domain_expiry: at most ten years.
MAX_EXPIRY_DAYS = 3650
MAX_URL_LEN = 2048


# What an address ``ipaddress`` reads can be spelled with (a scoped IPv6 one aside: ``%``).
_ADDRESS_CHARS = frozenset("0123456789abcdefABCDEF.:")


def is_valid_hostname(host: str) -> bool:
    if not host or len(host) > 253:
        return False
    # Only what could be an address is parsed as one (a name would raise, and raising costs:
    # a bulk create checks 10,000 hosts).
    if "%" in host or _ADDRESS_CHARS.issuperset(host):
        try:
            ipaddress.ip_address(host)
            return True
        except ValueError:
            pass
    labels = host.rstrip(".").split(".")
    return all(_LABEL.match(label) for label in labels)


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_dns_name(name: str) -> bool:
    """A DNS name (not an IP literal); underscores allowed (``_dmarc.example.com``)."""
    bare = name[:-1] if name.endswith(".") else name
    if not bare or len(bare) > 253 or is_ip(bare):
        return False
    return all(_DNS_LABEL.match(label) for label in bare.split("."))


def noncanonical_ipv4(host: str) -> str | None:
    """The dotted quad ``host`` spells some other way (see above), or None when it is a name,
    an IPv6 literal or already the dotted quad."""
    ip = ip_literal(host)
    if isinstance(ip, ipaddress.IPv4Address) and host != str(ip):
        return str(ip)
    return None


def _noncanonical(what: str, host: str, code: str, field: str) -> None:
    canonical = noncanonical_ipv4(host)
    if canonical is not None:
        raise SpecError(
            code,
            f"{what} '{host}' is a non-canonical spelling of {canonical}; write {canonical}",
            field,
            {"host": host, "canonical": canonical},
        )


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


def reject_redaction_sentinel(fields: dict[str, Any]) -> None:
    """Refuse credentials (``{field name: value}``) that still hold the redaction sentinel: a
    client that sends back what it read must re-supply the real value, not store ``***``."""
    sentinel = find_redaction_sentinel(fields)
    if sentinel is not None:
        name = sentinel.strip("/").split("/")[0]
        raise SpecError(
            "REDACTION_SENTINEL",
            f"{name} contains redaction sentinel — re-supply the real credential",
            sentinel,
        )


def validate_timeout(timeout: int) -> None:
    if not 1 <= timeout <= MAX_TIMEOUT_MS:
        raise SpecError(
            "INVALID_TIMEOUT",
            f"timeout must be between 1 and {MAX_TIMEOUT_MS} ms, got {timeout}",
            "/timeout",
        )


def validate_url(url: str) -> None:
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
    _noncanonical("url host", host, "INVALID_URL_FORMAT", "/url")
    if not is_valid_hostname(host):
        raise SpecError("INVALID_URL_FORMAT", f"url host '{host}' is not a valid hostname", "/url")


def validate_host(host: str, kind: str) -> None:
    if not host.strip():
        raise SpecError("INVALID_TCP_HOST", f"{kind} host must not be empty", "/host")
    if host.startswith("[") and host.endswith("]"):
        valid = _is_ipv6(host[1:-1])  # brackets only ever wrap an IPv6 literal
    else:
        _noncanonical(f"{kind} host", host, "INVALID_TCP_HOST", "/host")
        valid = is_valid_hostname(host)
    if not valid:
        raise SpecError(
            "INVALID_TCP_HOST", f"{kind} host '{host}' is not a valid hostname or IP", "/host"
        )


def validate_port(port: int, kind: str) -> None:
    if not 1 <= port <= 65535:
        raise SpecError(
            "INVALID_TCP_PORT", f"{kind} port must be between 1 and 65535, got {port}", "/port"
        )


def validate_days(code: str, kind: str, warn_days: int, critical_days: int) -> None:
    """The expiry thresholds of tls_cert and domain_expiry (``code`` is the kind's own)."""
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
