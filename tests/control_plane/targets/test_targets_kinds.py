"""The dns, tls_cert and domain_expiry kinds through /api/v1/targets: defaults on read, full
round trips, each validation code with its JSON pointer, and the kind interval floors."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.checks import DNS_RECORD_TYPES, CheckSpec, DnsCheck, DomainExpiryCheck, TlsCertCheck
from shared.validation import SpecError, validate_check
from tests.conftest import Persona, assert_error
from tests.control_plane.targets.test_targets_crud import create, http_target

API = "/api/v1/targets"


def dns_target(name: str = "resolver", **check: Any) -> dict[str, Any]:
    return {"name": name, "check": {"type": "dns", "name": "example.com", **check}}


def tls_target(name: str = "cert", **check: Any) -> dict[str, Any]:
    return {"name": name, "check": {"type": "tls_cert", "host": "example.com", **check}}


def domain_target(name: str = "registration", **check: Any) -> dict[str, Any]:
    return {"name": name, "check": {"type": "domain_expiry", "domain": "example.com", **check}}


@pytest.mark.parametrize(
    ("body", "check", "interval"),
    [
        (
            dns_target(),
            {
                "type": "dns",
                "name": "example.com",
                "record_type": "A",
                "server": None,
                "port": 53,
                "expected": [],
                "match": "contains",
                "timeout": 5000,
            },
            60,
        ),
        (
            tls_target(),
            {
                "type": "tls_cert",
                "host": "example.com",
                "port": 443,
                "server_name": None,
                "warn_days": 14,
                "critical_days": 7,
                "timeout": 5000,
            },
            86400,
        ),
        (
            domain_target(),
            {
                "type": "domain_expiry",
                "domain": "example.com",
                "warn_days": 30,
                "critical_days": 7,
                "timeout": 10000,
            },
            86400,
        ),
    ],
    ids=["dns", "tls_cert", "domain_expiry"],
)
async def test_defaults_are_filled_in_on_read(
    owner: Persona, body: dict[str, Any], check: dict[str, Any], interval: int
) -> None:
    created = await create(owner, body)
    read = (await owner.get(f"{API}/{created['id']}")).json()
    assert read == created
    assert read["check"] == check
    assert read["interval"] == interval


@pytest.mark.parametrize(
    "check",
    [
        {
            "type": "dns",
            "name": "_dmarc.example.com.",
            "record_type": "TXT",
            "server": "2001:db8::53",
            "port": 5353,
            "expected": ["v=DMARC1; p=reject"],
            "match": "equals",
            "timeout": 1500,
        },
        {
            "type": "dns",
            "name": "example.com",
            "record_type": "MX",
            "server": "192.0.2.53",
            "port": 53,
            "expected": ["10 mx1.example.com.", "mx2.example.com"],
            "match": "contains",
            "timeout": 2000,
        },
        {
            "type": "tls_cert",
            "host": "192.0.2.10",
            "port": 8443,
            "server_name": "shop.example.com",
            "warn_days": 30,
            "critical_days": 0,
            "timeout": 3000,
        },
        {
            "type": "domain_expiry",
            "domain": "shop.example.co.uk",
            "warn_days": 60,
            "critical_days": 14,
            "timeout": 20000,
        },
    ],
    ids=["dns-txt", "dns-mx", "tls_cert", "domain_expiry"],
)
async def test_every_field_reads_back_and_lists(owner: Persona, check: dict[str, Any]) -> None:
    created = await create(owner, {"name": "full", "check": check, "interval": 7200})
    read = (await owner.get(f"{API}/{created['id']}")).json()
    assert read["check"] == check
    assert read["interval"] == 7200
    listed = (await owner.get(API)).json()
    assert [item["check"] for item in listed["items"]] == [check]


def _set(body: dict[str, Any], **check: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    out["check"].update(check)
    return out


DNS, TLS, DOMAIN = dns_target(), tls_target(), domain_target()

# (id, body, code, field): one mistake each in an otherwise valid body; all are 400.
INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    # dns
    ("dns name empty", _set(DNS, name=""), "INVALID_DNS_PARAMS", "/check/name"),
    ("dns name spaces", _set(DNS, name="exa mple.com"), "INVALID_DNS_PARAMS", "/check/name"),
    ("dns name ip", _set(DNS, name="192.0.2.1"), "INVALID_DNS_PARAMS", "/check/name"),
    ("dns name label", _set(DNS, name="a" * 64 + ".com"), "INVALID_DNS_PARAMS", "/check/name"),
    ("dns server host", _set(DNS, server="ns.example.com"), "INVALID_DNS_PARAMS", "/check/server"),
    ("dns port 0", _set(DNS, port=0), "INVALID_TCP_PORT", "/check/port"),
    ("dns port high", _set(DNS, port=65536), "INVALID_TCP_PORT", "/check/port"),
    ("dns timeout", _set(DNS, timeout=0), "INVALID_TIMEOUT", "/check/timeout"),
    (
        "dns A not v4",
        _set(DNS, expected=["192.0.2.1", "2001:db8::1"]),
        "INVALID_DNS_PARAMS",
        "/check/expected/1",
    ),
    (
        "dns AAAA not v6",
        _set(DNS, record_type="AAAA", expected=["192.0.2.1"]),
        "INVALID_DNS_PARAMS",
        "/check/expected/0",
    ),
    (
        "dns CNAME not a name",
        _set(DNS, record_type="CNAME", expected=["not a name"]),
        "INVALID_DNS_PARAMS",
        "/check/expected/0",
    ),
    (
        "dns MX bad preference",
        _set(DNS, record_type="MX", expected=["high mx.example.com"]),
        "INVALID_DNS_PARAMS",
        "/check/expected/0",
    ),
    (
        "dns TXT empty value",
        _set(DNS, record_type="TXT", expected=["   "]),
        "INVALID_DNS_PARAMS",
        "/check/expected/0",
    ),
    ("dns equals empty", _set(DNS, match="equals"), "INVALID_DNS_PARAMS", "/check/expected"),
    (
        "dns too many",
        _set(DNS, record_type="TXT", expected=[f"v{i}" for i in range(51)]),
        "INVALID_DNS_PARAMS",
        "/check/expected",
    ),
    # tls_cert
    ("tls host empty", _set(TLS, host=""), "INVALID_TCP_HOST", "/check/host"),
    ("tls host bad", _set(TLS, host="exa mple.com"), "INVALID_TCP_HOST", "/check/host"),
    ("tls port 0", _set(TLS, port=0), "INVALID_TCP_PORT", "/check/port"),
    (
        "tls server_name ip",
        _set(TLS, server_name="192.0.2.1"),
        "INVALID_TLS_CERT_PARAMS",
        "/check/server_name",
    ),
    (
        "tls warn == critical",
        _set(TLS, warn_days=7, critical_days=7),
        "INVALID_TLS_CERT_PARAMS",
        "/check/warn_days",
    ),
    (
        "tls warn < critical",
        _set(TLS, warn_days=5, critical_days=10),
        "INVALID_TLS_CERT_PARAMS",
        "/check/warn_days",
    ),
    (
        "tls critical negative",
        _set(TLS, critical_days=-1),
        "INVALID_TLS_CERT_PARAMS",
        "/check/critical_days",
    ),
    ("tls warn huge", _set(TLS, warn_days=4000), "INVALID_TLS_CERT_PARAMS", "/check/warn_days"),
    ("tls timeout", _set(TLS, timeout=60_001), "INVALID_TIMEOUT", "/check/timeout"),
    # domain_expiry
    ("domain no dot", _set(DOMAIN, domain="localhost"), "INVALID_DOMAIN_PARAMS", "/check/domain"),
    ("domain empty", _set(DOMAIN, domain=""), "INVALID_DOMAIN_PARAMS", "/check/domain"),
    ("domain ip", _set(DOMAIN, domain="192.0.2.1"), "INVALID_DOMAIN_PARAMS", "/check/domain"),
    ("domain url", _set(DOMAIN, domain="https://x.com"), "INVALID_DOMAIN_PARAMS", "/check/domain"),
    (
        "domain warn == critical",
        _set(DOMAIN, warn_days=7),
        "INVALID_DOMAIN_PARAMS",
        "/check/warn_days",
    ),
    (
        "domain critical negative",
        _set(DOMAIN, critical_days=-3),
        "INVALID_DOMAIN_PARAMS",
        "/check/critical_days",
    ),
    ("domain timeout", _set(DOMAIN, timeout=0), "INVALID_TIMEOUT", "/check/timeout"),
]


@pytest.mark.parametrize(
    ("body", "code", "field"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
async def test_invalid_specs_are_400_with_code_and_pointer(
    owner: Persona, body: dict[str, Any], code: str, field: str
) -> None:
    assert_error(await owner.post(API, json=body), 400, code, field)
    assert (await owner.get(API)).json()["items"] == []


async def test_warn_not_above_critical_names_both_values(owner: Persona) -> None:
    err = assert_error(
        await owner.post(API, json=_set(TLS, warn_days=7, critical_days=7)),
        400,
        "INVALID_TLS_CERT_PARAMS",
        "/check/warn_days",
    )
    assert err["message"] == "tls_cert warn_days must be > critical_days (7 <= 7)"
    assert err["details"] == {"warn_days": 7, "critical_days": 7}


WRONG_SHAPE: list[tuple[str, dict[str, Any], str, str]] = [
    ("record_type PTR", _set(DNS, record_type="PTR"), "INVALID_DNS_PARAMS", "/check/record_type"),
    ("match regex", _set(DNS, match="regex"), "INVALID_DNS_PARAMS", "/check/match"),
    ("expected str", _set(DNS, expected="192.0.2.1"), "INVALID_DNS_PARAMS", "/check/expected"),
    ("server number", _set(DNS, server=53), "INVALID_DNS_PARAMS", "/check/server"),
    (
        "server_name list",
        _set(TLS, server_name=["a"]),
        "INVALID_TLS_CERT_PARAMS",
        "/check/server_name",
    ),
    ("domain number", _set(DOMAIN, domain=7), "INVALID_DOMAIN_PARAMS", "/check/domain"),
    ("tls port string", _set(TLS, port="443"), "INVALID_TCP_PORT", "/check/port"),
    ("warn_days string", _set(TLS, warn_days="14"), "VALIDATION_ERROR", "/check/warn_days"),
    ("unknown field", _set(DOMAIN, registrar="x"), "UNKNOWN_FIELD", "/check/registrar"),
    ("dns without name", {"name": "d", "check": {"type": "dns"}}, "MISSING_FIELD", "/check/name"),
]


@pytest.mark.parametrize(
    ("body", "code", "field"), [c[1:] for c in WRONG_SHAPE], ids=[c[0] for c in WRONG_SHAPE]
)
async def test_wrong_types_and_values_name_the_field(
    owner: Persona, body: dict[str, Any], code: str, field: str
) -> None:
    assert_error(await owner.post(API, json=body), 400, code, field)


@pytest.mark.parametrize(
    ("body", "interval", "floor"),
    [
        (dns_target(), 9, 10),
        (tls_target(), 3599, 3600),
        (tls_target(), 60, 3600),
        (domain_target(), 3599, 3600),
        (domain_target(), 600, 3600),
    ],
)
async def test_kind_interval_floors_are_422(
    owner: Persona, body: dict[str, Any], interval: int, floor: int
) -> None:
    err = assert_error(
        await owner.post(API, json={**body, "interval": interval}),
        422,
        "MIN_CHECK_INTERVAL",
        "/interval",
    )
    assert err["details"]["kind_min"] == floor
    assert err["details"]["floor"] == floor


@pytest.mark.parametrize(
    ("body", "interval"),
    [(dns_target(), 10), (tls_target(), 3600), (domain_target(), 3600)],
)
async def test_the_floor_itself_is_accepted(
    owner: Persona, body: dict[str, Any], interval: int
) -> None:
    created = await create(owner, {**body, "interval": interval})
    assert created["interval"] == interval


async def test_patching_to_a_daily_kind_keeps_the_floor(owner: Persona) -> None:
    created = await create(owner, http_target())
    url = f"{API}/{created['id']}"
    tls_check = tls_target()["check"]
    assert_error(
        await owner.patch(url, json={"check": tls_check}), 422, "MIN_CHECK_INTERVAL", "/interval"
    )
    patched = await owner.patch(url, json={"check": tls_check, "interval": 86400})
    assert patched.status_code == 200, patched.text
    assert patched.json()["check"]["type"] == "tls_cert"
    assert patched.json()["interval"] == 86400
    assert_error(
        await owner.patch(url, json={"interval": 1800}), 422, "MIN_CHECK_INTERVAL", "/interval"
    )


async def test_another_orgs_target_of_a_new_kind_is_404(owner: Persona, outsider: Persona) -> None:
    created = await create(owner, domain_target())
    assert_error(await outsider.get(f"{API}/{created['id']}"), 404, "TARGET_NOT_FOUND")


SPECS = (
    st.builds(
        DnsCheck,
        name=st.text(max_size=20) | st.sampled_from(["example.com", "_srv.example.com."]),
        record_type=st.sampled_from(DNS_RECORD_TYPES),
        server=st.none() | st.text(max_size=10) | st.sampled_from(["192.0.2.1", "::1"]),
        port=st.integers(-5, 70_000),
        expected=st.lists(st.text(max_size=12), max_size=3),
        match=st.sampled_from(["equals", "contains"]),
        timeout=st.integers(-10, 100_000),
    )
    | st.builds(
        TlsCertCheck,
        host=st.text(max_size=20) | st.just("example.com"),
        port=st.integers(-5, 70_000),
        server_name=st.none() | st.text(max_size=20),
        warn_days=st.integers(-5, 5000),
        critical_days=st.integers(-5, 5000),
        timeout=st.integers(-10, 100_000),
    )
    | st.builds(
        DomainExpiryCheck,
        domain=st.text(max_size=20) | st.sampled_from(["example.com", "com", "x.co.uk."]),
        warn_days=st.integers(-5, 5000),
        critical_days=st.integers(-5, 5000),
        timeout=st.integers(-10, 100_000),
    )
)


@given(check=SPECS)
def test_validation_only_ever_raises_spec_errors(check: CheckSpec) -> None:
    try:
        validate_check(check)
    except SpecError as err:
        assert err.code in {
            "INVALID_DNS_PARAMS",
            "INVALID_TLS_CERT_PARAMS",
            "INVALID_DOMAIN_PARAMS",
            "INVALID_TCP_HOST",
            "INVALID_TCP_PORT",
            "INVALID_TIMEOUT",
        }
        assert err.field is not None and err.field.startswith("/")
        assert err.status == 400
    else:
        assert 1 <= check.timeout <= 60_000
        if isinstance(check, TlsCertCheck | DomainExpiryCheck):
            assert 0 <= check.critical_days < check.warn_days
        if isinstance(check, DomainExpiryCheck):
            assert "." in check.domain.rstrip(".")
        if isinstance(check, DnsCheck):
            assert check.expected or check.match == "contains"
