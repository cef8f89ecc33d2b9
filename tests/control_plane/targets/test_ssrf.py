"""SSRF at create time: IP-literal hosts in blocked ranges are refused unless the deployment
allows private targets."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from control_plane.app import create_app
from control_plane.settings import Settings
from tests.conftest import Persona, assert_error, make_org
from tests.monitoring_helpers import AgentHandle, make_agent, make_due, make_target
from tests.stack import OPERATOR_TOKEN


@pytest.fixture
async def guarded(settings: Settings, db_url: str) -> AsyncIterator[Persona]:
    security = dataclasses.replace(settings.security, allow_private_targets=False)
    app = create_app(dataclasses.replace(settings, security=security))
    async with AsyncTestClient(app=app) as client:
        org_id, token = await make_org(db_url, "Guarded")
        yield Persona(client, {"Authorization": f"Bearer {token}"}, org_id)


BLOCKED: list[tuple[dict[str, Any], str, str]] = [
    (
        {"type": "http", "url": "http://169.254.169.254/latest/meta-data"},
        "/check/url",
        "169.254.0.0/16",
    ),
    (
        {"type": "http", "url": "http://[::ffff:10.0.0.1]/"},
        "/check/url",
        "10.0.0.0/8 (embedded in ::ffff:a00:1)",
    ),
    (
        {"type": "http", "url": "https://[64:ff9b::a9fe:a9fe]/"},
        "/check/url",
        "169.254.0.0/16 (embedded in 64:ff9b::a9fe:a9fe)",
    ),
    ({"type": "tcp", "host": "100.64.0.1", "port": 22}, "/check/host", "100.64.0.0/10"),
    ({"type": "tcp", "host": "127.0.0.1", "port": 5432}, "/check/host", "127.0.0.0/8"),
    (
        {"type": "dns", "name": "example.com", "server": "192.168.1.1"},
        "/check/server",
        "192.168.0.0/16",
    ),
]


@pytest.mark.parametrize(("check", "field", "blocked"), BLOCKED)
async def test_blocked_ip_literals_are_refused_on_create_and_patch(
    guarded: Persona, check: dict[str, Any], field: str, blocked: str
) -> None:
    resp = await guarded.post("/api/v1/targets", json={"name": "x", "check": check})
    err = assert_error(resp, 400, "SSRF_BLOCKED", field)
    assert err["details"]["range"] == blocked
    ok = await guarded.post(
        "/api/v1/targets",
        json={"name": "ok", "check": {"type": "http", "url": "https://example.com"}},
    )
    assert ok.status_code == 201, ok.text
    resp = await guarded.patch(f"/api/v1/targets/{ok.json()['id']}", json={"check": check})
    assert_error(resp, 400, "SSRF_BLOCKED", field)
    assert (await guarded.get("/api/v1/targets")).json()["total"] == 1


# Teredo: server 65.54.227.120, client 127.0.0.1 (stored with its bits inverted).
TEREDO = "2001:0:4136:e378:8000:63bf:80ff:fffe"
ISATAP = "2001:470::5efe:a00:1"  # ISATAP interface id carrying 10.0.0.1

# Every IPv6 form of a blocked address: (URL host, address, blocked range).
EMBEDDED: list[tuple[str, str, str]] = [
    ("[::127.0.0.1]", "::7f00:1", "127.0.0.0/8 (embedded in ::7f00:1)"),
    ("[::ffff:0:7f00:1]", "::ffff:0:7f00:1", "127.0.0.0/8 (embedded in ::ffff:0:7f00:1)"),
    ("[64:ff9b:1::a00:1]", "64:ff9b:1::a00:1", "64:ff9b:1::/48"),
    ("[2002:7f00:1::]", "2002:7f00:1::", "127.0.0.0/8 (embedded in 2002:7f00:1::)"),
    (f"[{TEREDO}]", TEREDO, f"127.0.0.0/8 (embedded in {TEREDO})"),
    ("[2001:470::5efe:10.0.0.1]", ISATAP, f"10.0.0.0/8 (embedded in {ISATAP})"),
    ("[::]", "::", "::/128"),
]


@pytest.mark.parametrize(("host", "address", "blocked"), EMBEDDED)
async def test_every_ipv6_form_of_a_blocked_address_is_refused_on_create(
    guarded: Persona, host: str, address: str, blocked: str
) -> None:
    url = {"type": "http", "url": f"http://{host}:8080/"}
    tcp = {"type": "tcp", "host": host, "port": 22}
    for check, field in ((url, "/check/url"), (tcp, "/check/host")):
        resp = await guarded.post("/api/v1/targets", json={"name": "x", "check": check})
        err = assert_error(resp, 400, "SSRF_BLOCKED", field)
        assert err["details"] == {"address": address, "range": blocked}
    assert (await guarded.get("/api/v1/targets")).json()["total"] == 0


SPELLINGS = ["127.1", "0x7f.1", "2130706433", "0177.0.0.1", "127.0.0.1.", "0X7F.0.0.1"]


@pytest.mark.parametrize("spelling", SPELLINGS)
async def test_non_canonical_ipv4_spellings_are_refused_naming_the_address(
    guarded: Persona, owner: Persona, spelling: str
) -> None:
    # Refused whether or not the deployment allows private targets: the spelling is the
    # problem, and the tenant is told which address it really is.
    for persona in (guarded, owner):
        url = {"type": "http", "url": f"http://{spelling}:8080/health"}
        resp = await persona.post("/api/v1/targets", json={"name": "x", "check": url})
        err = assert_error(resp, 400, "INVALID_URL_FORMAT", "/check/url")
        shown = spelling.lower()  # a URL's host is case-insensitive, and read lower-cased
        assert err["message"] == (
            f"url host '{shown}' is a non-canonical spelling of 127.0.0.1; write 127.0.0.1"
        )
        for kind in ("tcp", "tls_cert", "icmp"):
            check: dict[str, Any] = {"type": kind, "host": spelling}
            if kind != "icmp":
                check["port"] = 443
            resp = await persona.post("/api/v1/targets", json={"name": "x", "check": check})
            err = assert_error(resp, 400, "INVALID_TCP_HOST", "/check/host")
            assert f"'{spelling}' is a non-canonical spelling of 127.0.0.1" in err["message"]


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "localhost.", "api.localhost"])
async def test_localhost_is_refused_like_the_loopback_address_it_always_is(
    guarded: Persona, owner: Persona, host: str
) -> None:
    url = {"type": "http", "url": f"http://{host}:8080/"}
    tcp = {"type": "tcp", "host": host, "port": 5432}
    for check, field in ((url, "/check/url"), (tcp, "/check/host")):
        resp = await guarded.post("/api/v1/targets", json={"name": "x", "check": check})
        err = assert_error(resp, 400, "SSRF_BLOCKED", field)
        assert err["details"]["range"] == "localhost (RFC 6761: always loopback)"
        # Where private targets are allowed, localhost is as fine as 127.0.0.1.
        resp = await owner.post("/api/v1/targets", json={"name": "x", "check": check})
        assert resp.status_code == 201, resp.text


async def test_public_literals_and_names_pass(guarded: Persona) -> None:
    for url in (
        "http://93.184.216.34/",
        "https://example.com/",
        "https://example.com./",  # a DNS name may end with the root's dot
        "http://localhost.example.com/",
        # Forms that carry a public IPv4 address are judged by it.
        "http://[::ffff:8.8.8.8]/",
        "http://[::ffff:0:8.8.8.8]/",
        "http://[64:ff9b::8.8.8.8]/",
        "http://[2002:808:808::]/",
        "http://[2001:0:4136:e378:8000:63bf:f7f7:f7f7]/",  # Teredo, client 8.8.8.8
    ):
        resp = await guarded.post(
            "/api/v1/targets", json={"name": "x", "check": {"type": "http", "url": url}}
        )
        # Names are judged by the agent at connect time, when they resolve.
        assert resp.status_code == 201, resp.text


async def test_allow_private_targets_turns_the_guard_off(owner: Persona) -> None:
    for check, _, _ in BLOCKED:
        resp = await owner.post("/api/v1/targets", json={"name": "x", "check": check})
        assert resp.status_code == 201, resp.text


# --- the agent's side: what each lease tells it ----------------------------------------------


async def _lease_allow_private(agent: AgentHandle, db_url: str, target_id: str) -> bool:
    await make_due(db_url, target_id)
    resp = await agent.lease()
    assert resp.status_code == 200, resp.text
    (lease,) = resp.json()["leases"]
    assert lease["target_id"] == target_id
    allow: bool = lease["allow_private"]
    return allow


@pytest.fixture
async def guarded_operator(guarded: Persona) -> Persona:
    return Persona(guarded.client, {"Authorization": f"Bearer {OPERATOR_TOKEN}"})


async def grant(
    operator: Persona, region: str, org_id: Any, *, allow_private: bool, status: int = 200
) -> dict[str, Any]:
    resp = await operator.put(
        f"/operator/regions/{region}/grants/{org_id}",
        json={"allow_private_targets": allow_private},
    )
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_leases_carry_the_region_switch_and_the_orgs_grant(
    guarded: Persona, guarded_operator: Persona, db_url: str
) -> None:
    operator = guarded_operator
    resp = await operator.post(
        "/operator/regions", json={"id": "on-prem", "name": "On prem", "location": "rack 4"}
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["allow_private_targets"] is False
    target = await make_target(guarded, name="internal")
    resp = await guarded.put(
        f"/api/v1/targets/{target['id']}/regions", json={"regions": ["default", "on-prem"]}
    )
    assert resp.status_code == 200, resp.text
    on_prem = await make_agent(operator, region="on-prem", name="p1")
    default = await make_agent(operator, name="d1")

    # Secure by default: neither the deployment nor the region allows private targets.
    assert await _lease_allow_private(on_prem, db_url, target["id"]) is False

    resp = await operator.patch("/operator/regions/on-prem", json={"allow_private_targets": True})
    assert resp.status_code == 200, resp.text
    assert resp.json()["allow_private_targets"] is True
    listed = (await operator.get("/operator/regions")).json()["items"]
    assert {r["id"]: r["allow_private_targets"] for r in listed} == {
        "default": False,
        "on-prem": True,
    }
    # The region's switch alone lends its network to nobody: the org needs a grant.
    assert await _lease_allow_private(on_prem, db_url, target["id"]) is False
    await grant(operator, "on-prem", guarded.org_id, allow_private=True, status=201)
    assert await _lease_allow_private(on_prem, db_url, target["id"]) is True
    # Another region's agents do not get it, grant or not.
    assert await _lease_allow_private(default, db_url, target["id"]) is False
    # A PATCH that leaves the switch out keeps it.
    await operator.patch("/operator/regions/on-prem", json={"name": "On premises"})
    assert await _lease_allow_private(on_prem, db_url, target["id"]) is True
    # The region's switch off: guarded again, whatever the grants say.
    await operator.patch("/operator/regions/on-prem", json={"allow_private_targets": False})
    assert await _lease_allow_private(on_prem, db_url, target["id"]) is False
    # On again, but the grant withdrawn from private: guarded.
    await operator.patch("/operator/regions/on-prem", json={"allow_private_targets": True})
    await grant(operator, "on-prem", guarded.org_id, allow_private=False)
    assert await _lease_allow_private(on_prem, db_url, target["id"]) is False


async def test_a_region_created_allowing_private_targets_lends_it_only_to_granted_orgs(
    guarded: Persona, guarded_operator: Persona, db_url: str
) -> None:
    resp = await guarded_operator.post(
        "/operator/regions", json={"id": "lab", "name": "Lab", "allow_private_targets": True}
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["allow_private_targets"] is True

    def catalog_entry(items: list[dict[str, Any]]) -> dict[str, Any]:
        (entry,) = [r for r in items if r["id"] == "lab"]
        return entry

    # Tenants see the catalog and their own permission there, never the operator's switch.
    entry = catalog_entry((await guarded.get("/api/v1/regions")).json()["items"])
    assert entry == {"id": "lab", "name": "Lab", "location": "", "allow_private_targets": False}
    target = await make_target(guarded)
    await guarded.put(f"/api/v1/targets/{target['id']}/regions", json={"regions": ["lab"]})
    agent = await make_agent(guarded_operator, region="lab")
    assert await _lease_allow_private(agent, db_url, target["id"]) is False

    await grant(guarded_operator, "lab", guarded.org_id, allow_private=True, status=201)
    entry = catalog_entry((await guarded.get("/api/v1/regions")).json()["items"])
    assert entry["allow_private_targets"] is True
    assert await _lease_allow_private(agent, db_url, target["id"]) is True


async def test_the_deployment_setting_allows_private_targets_in_every_region(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    # ``owner``/``operator`` run with the test settings: allow_private_targets on.
    target = await make_target(owner, url="http://127.0.0.1:9/")
    agent = await make_agent(operator)
    region = (await operator.get("/operator/regions/default")).json()
    assert region["allow_private_targets"] is False
    assert await _lease_allow_private(agent, db_url, target["id"]) is True
