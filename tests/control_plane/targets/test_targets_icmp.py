"""The icmp kind through /api/v1/targets and the agent lease: defaults on read, validation codes
with their JSON pointers, the interval floor, SSRF at create, and another org's target."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from control_plane.app import create_app
from control_plane.settings import Settings
from shared.checks import IcmpCheck
from shared.validation import SpecError, validate_check
from tests.conftest import Persona, assert_error, make_org
from tests.control_plane.targets.test_targets_crud import create
from tests.monitoring_helpers import make_agent, make_due

API = "/api/v1/targets"


def icmp_target(name: str = "ping", **check: Any) -> dict[str, Any]:
    return {"name": name, "check": {"type": "icmp", "host": "example.com", **check}}


async def test_defaults_are_filled_in_on_read(owner: Persona) -> None:
    created = await create(owner, icmp_target())
    read = (await owner.get(f"{API}/{created['id']}")).json()
    assert read == created
    assert read["check"] == {
        "type": "icmp",
        "host": "example.com",
        "count": 3,
        "timeout": 2000,
        "interval": None,
    }
    assert read["interval"] == 60


async def test_every_field_reads_back(owner: Persona) -> None:
    check = {
        "type": "icmp",
        "host": "2606:4700::1111",
        "count": 10,
        "timeout": 5000,
        "interval": 100,
    }
    created = await create(owner, {"name": "v6", "check": check, "interval": 30})
    assert created["check"] == check
    listed = (await owner.get(API)).json()["items"]
    assert [t["check"] for t in listed] == [check]


INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    ("empty host", icmp_target(host=" "), "INVALID_TCP_HOST", "/check/host"),
    ("bad host", icmp_target(host="exa mple.com"), "INVALID_TCP_HOST", "/check/host"),
    ("count 0", icmp_target(count=0), "INVALID_ICMP_PARAMS", "/check/count"),
    ("count 11", icmp_target(count=11), "INVALID_ICMP_PARAMS", "/check/count"),
    ("interval 5", icmp_target(interval=5), "INVALID_ICMP_PARAMS", "/check/interval"),
    ("interval 6000", icmp_target(interval=6000), "INVALID_ICMP_PARAMS", "/check/interval"),
    ("timeout 0", icmp_target(timeout=0), "INVALID_TIMEOUT", "/check/timeout"),
    (
        "packets outlast timeout",
        icmp_target(count=10, interval=500, timeout=4000),
        "INVALID_ICMP_PARAMS",
        "/check/timeout",
    ),
    ("count string", icmp_target(count="3"), "INVALID_ICMP_PARAMS", "/check/count"),
    ("interval float", icmp_target(interval=1.5), "INVALID_ICMP_PARAMS", "/check/interval"),
    ("no host", {"name": "p", "check": {"type": "icmp"}}, "MISSING_FIELD", "/check/host"),
    ("unknown field", icmp_target(ttl=64), "UNKNOWN_FIELD", "/check/ttl"),
]


@pytest.mark.parametrize(
    ("body", "code", "field"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
async def test_invalid_specs_are_400_with_code_and_pointer(
    owner: Persona, body: dict[str, Any], code: str, field: str
) -> None:
    assert_error(await owner.post(API, json=body), 400, code, field)
    assert (await owner.get(API)).json()["items"] == []


async def test_packets_outlasting_the_timeout_name_the_numbers(owner: Persona) -> None:
    err = assert_error(
        await owner.post(API, json=icmp_target(count=5, timeout=800)),
        400,
        "INVALID_ICMP_PARAMS",
        "/check/timeout",
    )
    assert err["details"] == {"count": 5, "interval": 200, "timeout": 800}


async def test_interval_floor_is_422_and_the_floor_is_accepted(owner: Persona) -> None:
    assert_error(
        await owner.post(API, json={**icmp_target(), "interval": 9}),
        422,
        "MIN_CHECK_INTERVAL",
        "/interval",
    )
    created = await create(owner, {**icmp_target(), "interval": 10})
    assert created["interval"] == 10


async def test_patch_validates_the_icmp_spec(owner: Persona) -> None:
    created = await create(owner, icmp_target())
    url = f"{API}/{created['id']}"
    bad = {"check": {"type": "icmp", "host": "example.com", "count": 42}}
    assert_error(await owner.patch(url, json=bad), 400, "INVALID_ICMP_PARAMS", "/check/count")
    good = {"check": {"type": "icmp", "host": "example.net", "count": 5}}
    patched = await owner.patch(url, json=good)
    assert patched.status_code == 200, patched.text
    assert patched.json()["check"]["count"] == 5


async def test_another_orgs_icmp_target_is_404(owner: Persona, outsider: Persona) -> None:
    created = await create(owner, icmp_target())
    assert_error(await outsider.get(f"{API}/{created['id']}"), 404, "TARGET_NOT_FOUND")
    assert_error(
        await outsider.patch(f"{API}/{created['id']}", json={"name": "mine"}),
        404,
        "TARGET_NOT_FOUND",
    )


async def test_an_agent_leases_the_icmp_spec(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    created = await create(owner, icmp_target(count=4, interval=50))
    agent = await make_agent(operator)
    await make_due(db_url, created["id"])
    (lease,) = (await agent.lease()).json()["leases"]
    assert lease["target_id"] == created["id"]
    assert lease["check"] == {
        "type": "icmp",
        "host": "example.com",
        "count": 4,
        "timeout": 2000,
        "interval": 50,
    }


@pytest.fixture
async def guarded(settings: Settings, db_url: str) -> AsyncIterator[Persona]:
    """An org on a deployment that does not allow private targets."""
    security = dataclasses.replace(settings.security, allow_private_targets=False)
    app = create_app(dataclasses.replace(settings, security=security))
    async with AsyncTestClient(app=app) as client:
        org_id, token = await make_org(db_url, "Guarded")
        yield Persona(client, {"Authorization": f"Bearer {token}"}, org_id)


@pytest.mark.parametrize(
    ("host", "blocked"),
    [("127.0.0.1", "127.0.0.0/8"), ("169.254.169.254", "169.254.0.0/16"), ("[::1]", "::1/128")],
)
async def test_a_blocked_ip_literal_is_refused_at_create(
    guarded: Persona, host: str, blocked: str
) -> None:
    err = assert_error(
        await guarded.post(API, json=icmp_target(host=host)), 400, "SSRF_BLOCKED", "/check/host"
    )
    assert err["details"]["range"] == blocked
    assert (await guarded.post(API, json=icmp_target(host="example.com"))).status_code == 201


async def test_a_deployment_that_allows_private_targets_takes_loopback(owner: Persona) -> None:
    created = await create(owner, icmp_target(host="127.0.0.1"))
    assert created["check"]["host"] == "127.0.0.1"


@given(
    st.builds(
        IcmpCheck,
        host=st.text(max_size=20) | st.sampled_from(["example.com", "[::1]", "192.0.2.1"]),
        count=st.integers(-5, 20),
        timeout=st.integers(-10, 100_000),
        interval=st.none() | st.integers(-10, 10_000),
    )
)
def test_icmp_validation_only_ever_raises_spec_errors(check: IcmpCheck) -> None:
    try:
        validate_check(check)
    except SpecError as err:
        assert err.code in ("INVALID_TCP_HOST", "INVALID_ICMP_PARAMS", "INVALID_TIMEOUT")
        assert err.field in ("/host", "/count", "/interval", "/timeout")
    else:
        assert 1 <= check.count <= 10
        gap = 200 if check.interval is None else check.interval
        assert (check.count - 1) * gap < check.timeout <= 60_000
