"""Pure unit tests of the wire check specs (shared.checks) and their validation (shared.validation).

No database, no HTTP: these are the rules the control plane applies on write and the agent
applies before it runs a check.
"""

from __future__ import annotations

import ipaddress
import typing
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.checks import (
    KIND_DEFAULT_INTERVAL,
    KIND_MIN_INTERVAL,
    REDACTED,
    SECRET_FIELDS,
    CheckSpec,
    ExactStatus,
    HttpCheck,
    OneOfStatus,
    RangeStatus,
    StatusRange,
    TcpCheck,
    check_kind,
    status_matches,
)
from shared.validation import (
    SpecError,
    find_redaction_sentinel,
    is_valid_hostname,
    validate_check,
)


def spec(raw: dict[str, Any]) -> CheckSpec:
    result: CheckSpec = msgspec.convert(raw, CheckSpec)
    return result


def error_of(raw: dict[str, Any]) -> tuple[str, str | None]:
    with pytest.raises(SpecError) as info:
        validate_check(spec(raw))
    return info.value.code, info.value.field


# -- the wire types ------------------------------------------------------------------------------


def test_http_defaults_match_the_reference() -> None:
    check = spec({"type": "http", "url": "https://example.com/healthz"})
    assert msgspec.to_builtins(check) == {
        "type": "http",
        "url": "https://example.com/healthz",
        "method": "GET",
        "timeout": 5000,
        "follow_redirects": False,
        "max_redirects": 0,
        "expected_status": {"kind": "exact", "value": 200},
        "expected_body_contains": None,
        "headers": {},
        "body": None,
        "verify_tls": True,
        "basic_auth": None,
        "bearer_token": None,
        "secret_headers": [],
        "assertions": [],
    }


def test_tcp_defaults_match_the_reference() -> None:
    check = spec({"type": "tcp", "host": "db.internal", "port": 5432})
    assert msgspec.to_builtins(check) == {
        "type": "tcp",
        "host": "db.internal",
        "port": 5432,
        "timeout": 2000,
    }


def test_every_kind_in_the_union_has_its_registries() -> None:
    union_kinds = {t.__struct_config__.tag for t in typing.get_args(CheckSpec)}
    assert check_kind(HttpCheck(url="https://e.com")) == "http"
    assert check_kind(TcpCheck(host="h", port=1)) == "tcp"
    for kind in union_kinds:
        assert kind in SECRET_FIELDS
        assert kind in KIND_MIN_INTERVAL
        assert kind in KIND_DEFAULT_INTERVAL
        assert KIND_DEFAULT_INTERVAL[kind] >= KIND_MIN_INTERVAL[kind]


def test_interval_floors_and_defaults_follow_the_reference() -> None:
    for kind in ("http", "tcp", "dns"):
        assert KIND_MIN_INTERVAL[kind] == 10
        assert KIND_DEFAULT_INTERVAL[kind] == 60
    for kind in ("tls_cert", "domain_expiry"):
        assert KIND_MIN_INTERVAL[kind] == 3600
        assert KIND_DEFAULT_INTERVAL[kind] == 86400


def test_secret_fields_are_fields_of_their_kind() -> None:
    for kind_type in typing.get_args(CheckSpec):
        kind = kind_type.__struct_config__.tag
        assert set(SECRET_FIELDS[kind]) <= set(kind_type.__struct_fields__)


@pytest.mark.parametrize(
    "raw",
    [
        {"kind": "exact", "value": 200},
        {"kind": "range", "value": {"min": 200, "max": 299}},
        {"kind": "one_of", "value": [200, 204]},
    ],
)
def test_expected_status_variants_round_trip(raw: dict[str, Any]) -> None:
    check = spec({"type": "http", "url": "https://e.com", "expected_status": raw})
    assert msgspec.to_builtins(check)["expected_status"] == raw


@given(lo=st.integers(100, 599), hi=st.integers(100, 599), status=st.integers(0, 1000))
def test_status_matches_each_variant(lo: int, hi: int, status: int) -> None:
    assert status_matches(ExactStatus(lo), status) == (status == lo)
    assert status_matches(RangeStatus(StatusRange(lo, hi)), status) == (lo <= status <= hi)
    assert status_matches(OneOfStatus([lo, hi]), status) == (status in (lo, hi))


# -- validate_check: each code with its pointer --------------------------------------------------

HTTP: dict[str, Any] = {"type": "http", "url": "https://example.com/"}
TCP: dict[str, Any] = {"type": "tcp", "host": "db.example.com", "port": 5432}


@pytest.mark.parametrize(
    ("raw", "code", "field"),
    [
        ({**HTTP, "url": "ftp://example.com"}, "INVALID_URL_SCHEME", "/url"),
        ({**HTTP, "url": "gopher://example.com"}, "INVALID_URL_SCHEME", "/url"),
        ({**HTTP, "url": "example.com"}, "INVALID_URL_FORMAT", "/url"),
        ({**HTTP, "url": ""}, "INVALID_URL_FORMAT", "/url"),
        ({**HTTP, "url": "https://"}, "INVALID_URL_FORMAT", "/url"),
        ({**HTTP, "url": "https://exa mple.com"}, "INVALID_URL_FORMAT", "/url"),
        ({**HTTP, "url": "https://example.com/\x7f"}, "INVALID_URL_FORMAT", "/url"),
        ({**HTTP, "url": "https://a:b@example.com"}, "INVALID_URL_FORMAT", "/url"),
        ({**HTTP, "url": "https://example.com:0"}, "INVALID_URL_FORMAT", "/url"),
        ({**HTTP, "url": "https://example.com:99999"}, "INVALID_URL_FORMAT", "/url"),
        ({**HTTP, "url": "https://[::1"}, "INVALID_URL_FORMAT", "/url"),
        ({**HTTP, "url": "https://e.com/" + "x" * 2048}, "INVALID_URL_FORMAT", "/url"),
        ({**HTTP, "timeout": 0}, "INVALID_TIMEOUT", "/timeout"),
        ({**HTTP, "timeout": 60_001}, "INVALID_TIMEOUT", "/timeout"),
        ({**TCP, "timeout": -5}, "INVALID_TIMEOUT", "/timeout"),
        ({**TCP, "port": 0}, "INVALID_TCP_PORT", "/port"),
        ({**TCP, "port": 65_536}, "INVALID_TCP_PORT", "/port"),
        ({**TCP, "host": ""}, "INVALID_TCP_HOST", "/host"),
        ({**TCP, "host": "\t"}, "INVALID_TCP_HOST", "/host"),
        ({**TCP, "host": "a b"}, "INVALID_TCP_HOST", "/host"),
        ({**TCP, "host": " db"}, "INVALID_TCP_HOST", "/host"),
        ({**TCP, "host": "db..example"}, "INVALID_TCP_HOST", "/host"),
        ({**TCP, "host": "[db]"}, "INVALID_TCP_HOST", "/host"),
        # A final newline is not part of a name (a regex ``$`` would let it through).
        ({**TCP, "host": "db.example\n"}, "INVALID_TCP_HOST", "/host"),
        (
            {**HTTP, "url": "https://example.com/", "headers": {"X-A\n": "v"}},
            "INVALID_HEADER",
            "/headers/X-A\n",
        ),
        ({"type": "dns", "name": "example.com\n"}, "INVALID_DNS_PARAMS", "/name"),
        (
            {**HTTP, "expected_status": {"kind": "exact", "value": 42}},
            "INVALID_STATUS_RANGE",
            "/expected_status/value",
        ),
        (
            {**HTTP, "expected_status": {"kind": "range", "value": {"min": 500, "max": 400}}},
            "INVALID_STATUS_RANGE",
            "/expected_status/value",
        ),
        (
            {**HTTP, "expected_status": {"kind": "one_of", "value": [200, 1000]}},
            "INVALID_STATUS_RANGE",
            "/expected_status/value/1",
        ),
        (
            {**HTTP, "expected_status": {"kind": "one_of", "value": []}},
            "INVALID_STATUS_RANGE",
            "/expected_status/value",
        ),
        (
            {**HTTP, "verify_tls": False, "basic_auth": ["u", "p"]},
            "INVALID_TLS_CRED_COMBO",
            "/verify_tls",
        ),
        (
            {**HTTP, "verify_tls": False, "bearer_token": "t"},
            "INVALID_TLS_CRED_COMBO",
            "/verify_tls",
        ),
        ({**HTTP, "basic_auth": REDACTED}, "REDACTION_SENTINEL", "/basic_auth"),
        ({**HTTP, "basic_auth": ["u", REDACTED]}, "REDACTION_SENTINEL", "/basic_auth/1"),
        ({**HTTP, "bearer_token": REDACTED}, "REDACTION_SENTINEL", "/bearer_token"),
        (
            {**HTTP, "headers": {"Authorization": REDACTED}},
            "REDACTION_SENTINEL",
            "/headers/Authorization",
        ),
        ({**HTTP, "headers": {"Bad Name": "v"}}, "INVALID_HEADER", "/headers/Bad Name"),
        ({**HTTP, "headers": {"X-A": "a\nb"}}, "INVALID_HEADER", "/headers/X-A"),
        ({**HTTP, "max_redirects": 21}, "VALIDATION_ERROR", "/max_redirects"),
        ({**HTTP, "max_redirects": -1}, "VALIDATION_ERROR", "/max_redirects"),
        ({**HTTP, "basic_auth": "user:pass"}, "VALIDATION_ERROR", "/basic_auth"),
        ({**HTTP, "bearer_token": ""}, "VALIDATION_ERROR", "/bearer_token"),
    ],
)
def test_validate_check_codes_and_pointers(raw: dict[str, Any], code: str, field: str) -> None:
    assert error_of(raw) == (code, field)


def test_the_sentinel_is_reported_before_anything_else() -> None:
    """A GET -> PATCH round trip is told about the sentinel even if something else is off."""
    raw = {**HTTP, "url": "ftp://x", "verify_tls": False, "bearer_token": REDACTED}
    assert error_of(raw) == ("REDACTION_SENTINEL", "/bearer_token")


@pytest.mark.parametrize(
    "raw",
    [
        HTTP,
        {**HTTP, "url": "http://example.com:8080/a?b=c#d"},
        {**HTTP, "url": "HTTPS://EXAMPLE.COM"},
        {**HTTP, "url": "http://192.0.2.1/"},
        {**HTTP, "url": "http://[2001:db8::1]:8443/"},
        {**HTTP, "url": "http://localhost"},
        {**HTTP, "url": "http://example.com."},
        {**HTTP, "verify_tls": False},
        {**HTTP, "url": "http://example.com", "verify_tls": False, "basic_auth": ["u", "p"]},
        {**HTTP, "basic_auth": ["u", ""]},
        {**HTTP, "headers": {"X-Token": "abc", "Accept": "*/*"}},
        {**HTTP, "expected_status": {"kind": "range", "value": {"min": 100, "max": 599}}},
        {**HTTP, "timeout": 1},
        {**HTTP, "timeout": 60_000},
        {**HTTP, "follow_redirects": True, "max_redirects": 20},
        TCP,
        {**TCP, "host": "192.0.2.7"},
        {**TCP, "host": "2001:db8::7"},
        {**TCP, "host": "[2001:db8::7]"},
        {**TCP, "port": 1},
        {**TCP, "port": 65_535},
    ],
)
def test_valid_specs_pass(raw: dict[str, Any]) -> None:
    validate_check(spec(raw))


# -- properties ----------------------------------------------------------------------------------

LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)


@given(labels=st.lists(LABEL, min_size=1, max_size=4))
def test_dns_names_are_valid_hostnames(labels: list[str]) -> None:
    name = ".".join(labels)
    assert is_valid_hostname(name) == (len(name) <= 253)


@given(ip=st.ip_addresses())
def test_ip_literals_are_valid_hostnames(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    assert is_valid_hostname(str(ip))


@given(host=st.text(min_size=1, max_size=40))
def test_hostnames_never_hold_whitespace_or_slashes(host: str) -> None:
    if any(c.isspace() or c in "/@:?#" for c in host) and not _is_ip(host):
        assert not is_valid_hostname(host)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet="abc/", max_size=4), children, max_size=3)
    ),
    max_leaves=10,
)


@given(value=JSONISH)
def test_find_redaction_sentinel_agrees_with_a_plain_search(value: Any) -> None:
    found = find_redaction_sentinel(value)

    def contains(v: Any) -> bool:
        if isinstance(v, str):
            return v == REDACTED
        if isinstance(v, dict):
            return any(contains(x) for x in v.values())
        if isinstance(v, list):
            return any(contains(x) for x in v)
        return False

    assert (found is not None) == contains(value)


@given(prefix=st.lists(st.sampled_from(["a", "b", 0, 1]), max_size=4))
def test_find_redaction_sentinel_points_at_the_value(prefix: list[Any]) -> None:
    value: Any = REDACTED
    pointer = ""
    for step in reversed(prefix):
        if isinstance(step, int):
            value = [None] * step + [value]
        else:
            value = {step: value}
        pointer = f"/{step}{pointer}"
    assert find_redaction_sentinel(value) == pointer


HTTP_SPECS = st.builds(
    HttpCheck,
    url=st.text(max_size=40) | st.sampled_from(["https://example.com", "http://[::1]:80/"]),
    method=st.sampled_from(["GET", "HEAD", "POST"]),
    timeout=st.integers(-10, 100_000),
    follow_redirects=st.booleans(),
    max_redirects=st.integers(-5, 50),
    expected_status=st.one_of(
        st.builds(ExactStatus, st.integers(0, 1000)),
        st.builds(RangeStatus, st.builds(StatusRange, st.integers(0, 1000), st.integers(0, 1000))),
        st.builds(OneOfStatus, st.lists(st.integers(0, 1000), max_size=3)),
    ),
    headers=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
    verify_tls=st.booleans(),
    basic_auth=st.none() | st.tuples(st.text(max_size=5), st.text(max_size=5)) | st.just(REDACTED),
    bearer_token=st.none() | st.text(max_size=5),
)
TCP_SPECS = st.builds(
    TcpCheck,
    host=st.text(max_size=30) | st.sampled_from(["db.example.com", "10.0.0.1", "[::1]"]),
    port=st.integers(-5, 70_000),
    timeout=st.integers(-10, 100_000),
)


@given(check=HTTP_SPECS | TCP_SPECS)
def test_validate_check_only_ever_raises_spec_errors(check: CheckSpec) -> None:
    try:
        validate_check(check)
    except SpecError as err:
        assert err.code.isupper()
        assert err.message
        assert err.field is None or err.field.startswith("/")
        assert err.status == 400
    else:
        # What passes is sane enough for the agent to run.
        assert 1 <= check.timeout <= 60_000
        if isinstance(check, TcpCheck):
            assert 1 <= check.port <= 65_535 and check.host.strip() == check.host
        else:
            assert check.url.lower().startswith(("http://", "https://"))
            assert find_redaction_sentinel([check.basic_auth, check.bearer_token]) is None
