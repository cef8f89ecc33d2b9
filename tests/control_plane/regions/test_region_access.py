"""Regions with an access list, and private targets only for the orgs granted them.

The attack this closes: an operator lets a region's agents reach a private network; any org
then put a target (or a ``/targets/test``) in that region and read internal services through
it. Now a restricted region does not exist for an org without a grant, and private addresses
are probed only for orgs whose grant allows it, in that region.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from litestar.testing import AsyncTestClient

from control_plane.app import create_app
from control_plane.settings import Settings
from tests.conftest import Persona, assert_error, make_org
from tests.monitoring_helpers import make_agent, make_due, make_target
from tests.stack import OPERATOR_TOKEN


@dataclasses.dataclass
class Guarded:
    """A deployment whose SSRF guard is on (no deployment-wide private targets)."""

    operator: Persona
    acme: Persona
    umbrella: Persona


@pytest.fixture
async def g(settings: Settings, db_url: str) -> AsyncIterator[Guarded]:
    security = dataclasses.replace(settings.security, allow_private_targets=False)
    app = create_app(dataclasses.replace(settings, security=security))
    async with AsyncTestClient(app=app) as client:
        personas = []
        for name in ("Acme", "Umbrella"):
            org_id, token = await make_org(db_url, name)
            personas.append(Persona(client, {"Authorization": f"Bearer {token}"}, org_id))
        operator = Persona(client, {"Authorization": f"Bearer {OPERATOR_TOKEN}"})
        yield Guarded(operator, *personas)


async def add_region(operator: Persona, region_id: str, **fields: Any) -> dict[str, Any]:
    resp = await operator.post(
        "/operator/regions", json={"id": region_id, "name": region_id.title(), **fields}
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def grant(
    operator: Persona, region: str, org_id: Any, allow_private: bool = False
) -> dict[str, Any]:
    resp = await operator.put(
        f"/operator/regions/{region}/grants/{org_id}",
        json={"allow_private_targets": allow_private},
    )
    assert resp.status_code in (200, 201), resp.text
    body: dict[str, Any] = resp.json()
    return body


async def catalog(persona: Persona) -> list[str]:
    resp = await persona.get("/api/v1/regions")
    assert resp.status_code == 200, resp.text
    return [r["id"] for r in resp.json()["items"]]


async def bound_regions(db_url: str, target_id: str) -> list[str]:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        rows = await (
            await conn.execute(
                "SELECT region_id FROM target_regions WHERE target_id = %s ORDER BY 1",
                (target_id,),
            )
        ).fetchall()
    return [r[0] for r in rows]


async def test_a_restricted_region_exists_only_for_the_orgs_granted_it(g: Guarded) -> None:
    await add_region(g.operator, "vault", access="restricted")
    assert await catalog(g.acme) == ["default"]
    await grant(g.operator, "vault", g.acme.org_id)
    assert await catalog(g.acme) == ["default", "vault"]
    assert await catalog(g.umbrella) == ["default"]

    mine = await make_target(g.acme)
    resp = await g.acme.put(f"/api/v1/targets/{mine['id']}/regions", json={"regions": ["vault"]})
    assert resp.status_code == 200, resp.text
    theirs = await make_target(g.umbrella)
    resp = await g.umbrella.put(
        f"/api/v1/targets/{theirs['id']}/regions", json={"regions": ["default", "vault"]}
    )
    assert_error(resp, 404, "REGION_NOT_FOUND", "/regions/1")
    # /targets/test in the region is refused the same way, before any agent is asked.
    resp = await g.umbrella.post(
        "/api/v1/targets/test",
        json={"check": {"type": "http", "url": "https://example.com/"}, "region": "vault"},
    )
    assert_error(resp, 404, "REGION_NOT_FOUND", "/region")
    # A region that does not exist at all keeps its own answer.
    resp = await g.umbrella.put(
        f"/api/v1/targets/{theirs['id']}/regions", json={"regions": ["nowhere"]}
    )
    assert_error(resp, 400, "UNKNOWN_REGION", "/regions/0")


async def test_the_private_network_of_a_region_is_lent_only_to_granted_orgs(
    g: Guarded, db_url: str
) -> None:
    # The operator's lab reaches the private network; only Acme is given it.
    await add_region(g.operator, "lab", allow_private_targets=True)
    await grant(g.operator, "lab", g.acme.org_id, allow_private=True)
    private = {"type": "http", "url": "http://10.0.0.5/admin"}

    # Umbrella may use the public region, but not its network: the literal is refused at create,
    # at /test, and a target it already has there is leased with the guard on.
    target = await make_target(g.umbrella)
    resp = await g.umbrella.put(
        f"/api/v1/targets/{target['id']}/regions", json={"regions": ["lab"]}
    )
    assert resp.status_code == 200, resp.text
    resp = await g.umbrella.patch(f"/api/v1/targets/{target['id']}", json={"check": private})
    assert_error(resp, 400, "SSRF_BLOCKED", "/check/url")
    resp = await g.umbrella.post("/api/v1/targets/test", json={"check": private, "region": "lab"})
    assert_error(resp, 400, "SSRF_BLOCKED", "/check/url")
    agent = await make_agent(g.operator, region="lab", name="lab-1")
    await make_due(db_url, target["id"])
    (lease,) = (await agent.lease()).json()["leases"]
    assert lease["allow_private"] is False

    # Acme, granted, may point its lab target at the private address.
    mine = await make_target(g.acme)
    resp = await g.acme.put(f"/api/v1/targets/{mine['id']}/regions", json={"regions": ["lab"]})
    assert resp.status_code == 200, resp.text
    resp = await g.acme.patch(f"/api/v1/targets/{mine['id']}", json={"check": private})
    assert resp.status_code == 200, resp.text
    await make_due(db_url, mine["id"])
    leases = (await agent.lease()).json()["leases"]
    assert [(x["target_id"], x["allow_private"]) for x in leases] == [(mine["id"], True)]
    # …but not move it to a region whose network it was not given.
    resp = await g.acme.put(
        f"/api/v1/targets/{mine['id']}/regions", json={"regions": ["lab", "default"]}
    )
    assert_error(resp, 400, "SSRF_BLOCKED", "/check/url")


async def test_create_time_ssrf_check_honours_the_default_regions_grant(g: Guarded) -> None:
    body = {"name": "box", "check": {"type": "tcp", "host": "127.0.0.1", "port": 3000}}
    assert_error(await g.acme.post("/api/v1/targets", json=body), 400, "SSRF_BLOCKED")
    await g.operator.patch("/operator/regions/default", json={"allow_private_targets": True})
    await grant(g.operator, "default", g.acme.org_id, allow_private=True)
    resp = await g.acme.post("/api/v1/targets", json=body)
    assert resp.status_code == 201, resp.text
    assert_error(await g.umbrella.post("/api/v1/targets", json=body), 400, "SSRF_BLOCKED")


async def test_withdrawing_a_grant_of_a_restricted_region_unbinds_the_orgs_targets(
    g: Guarded, db_url: str
) -> None:
    await add_region(g.operator, "vault", access="restricted")
    await grant(g.operator, "vault", g.acme.org_id)
    await grant(g.operator, "vault", g.umbrella.org_id)
    acme_t, umbrella_t = await make_target(g.acme), await make_target(g.umbrella)
    for persona, t in ((g.acme, acme_t), (g.umbrella, umbrella_t)):
        resp = await persona.put(
            f"/api/v1/targets/{t['id']}/regions", json={"regions": ["default", "vault"]}
        )
        assert resp.status_code == 200, resp.text
    resp = await g.operator.delete(f"/operator/regions/vault/grants/{g.umbrella.org_id}")
    assert resp.status_code == 204, resp.text
    assert await bound_regions(db_url, umbrella_t["id"]) == ["default"]
    assert await bound_regions(db_url, acme_t["id"]) == ["default", "vault"]
    # Restricting a public region unbinds every org without a grant in one move.
    await add_region(g.operator, "edge")
    for persona, t in ((g.acme, acme_t), (g.umbrella, umbrella_t)):
        resp = await persona.put(
            f"/api/v1/targets/{t['id']}/regions", json={"regions": ["default", "edge"]}
        )
        assert resp.status_code == 200, resp.text
    await grant(g.operator, "edge", g.acme.org_id)
    resp = await g.operator.patch("/operator/regions/edge", json={"access": "restricted"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["access"] == "restricted"
    assert await bound_regions(db_url, acme_t["id"]) == ["default", "edge"]
    assert await bound_regions(db_url, umbrella_t["id"]) == ["default"]


async def test_grants_are_listed_changed_and_withdrawn(g: Guarded) -> None:
    await add_region(g.operator, "vault", access="restricted")
    resp = await g.operator.put(
        f"/operator/regions/vault/grants/{g.acme.org_id}", json={"allow_private_targets": True}
    )
    assert resp.status_code == 201, resp.text
    first = resp.json()
    assert first["region"] == "vault" and first["org_id"] == str(g.acme.org_id)
    assert first["allow_private_targets"] is True
    again = await g.operator.put(f"/operator/regions/vault/grants/{g.acme.org_id}", json={})
    assert again.status_code == 200, again.text
    assert again.json()["allow_private_targets"] is False
    assert again.json()["created_at"] == first["created_at"]
    listed = (await g.operator.get("/operator/regions/vault/grants")).json()
    assert listed["total"] == 1 and listed["items"][0]["org_id"] == str(g.acme.org_id)
    path = f"/operator/regions/vault/grants/{g.acme.org_id}"
    assert (await g.operator.delete(path)).status_code == 204
    assert_error(await g.operator.delete(path), 404, "GRANT_NOT_FOUND")
    assert (await g.operator.get("/operator/regions/vault/grants")).json()["total"] == 0


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/operator/regions/nowhere/grants", None, 404, "REGION_NOT_FOUND"),
        ("GET", "/operator/regions/Not%20A%20Slug/grants", None, 404, "REGION_NOT_FOUND"),
        ("PUT", "/operator/regions/nowhere/grants/{org}", {}, 404, "REGION_NOT_FOUND"),
        ("PUT", "/operator/regions/default/grants/{stranger}", {}, 404, "ORG_NOT_FOUND"),
        ("PUT", "/operator/regions/default/grants/not-a-uuid", {}, 404, "ORG_NOT_FOUND"),
        ("DELETE", "/operator/regions/default/grants/{org}", None, 404, "GRANT_NOT_FOUND"),
        ("DELETE", "/operator/regions/default/grants/not-a-uuid", None, 404, "GRANT_NOT_FOUND"),
        ("DELETE", "/operator/regions/nowhere/grants/{org}", None, 404, "REGION_NOT_FOUND"),
        (
            "PUT",
            "/operator/regions/default/grants/{org}",
            {"allow_private_targets": "yes"},
            400,
            "VALIDATION_ERROR",
        ),
        ("PUT", "/operator/regions/default/grants/{org}", {"extra": 1}, 400, "UNKNOWN_FIELD"),
        ("PUT", "/operator/regions/default/grants/{org}", [], 400, "VALIDATION_ERROR"),
    ],
)
async def test_grant_routes_answer_bad_input_with_the_envelope(
    g: Guarded, method: str, path: str, body: Any, status: int, code: str
) -> None:
    path = path.format(org=g.acme.org_id, stranger=uuid.uuid4())
    resp = await g.operator.request(method, path, json=body)
    assert_error(resp, status, code)


async def test_region_access_must_be_public_or_restricted(g: Guarded) -> None:
    resp = await g.operator.post(
        "/operator/regions", json={"id": "x1", "name": "X", "access": "private"}
    )
    assert_error(resp, 400, "INVALID_REGION_ACCESS", "/access")
    resp = await g.operator.patch("/operator/regions/default", json={"access": 3})
    assert_error(resp, 400, "INVALID_REGION_ACCESS", "/access")


async def test_grant_routes_are_the_operators_only(g: Guarded) -> None:
    for persona in (g.acme, Persona(g.acme.client, {})):
        resp = await persona.put(
            f"/operator/regions/default/grants/{g.acme.org_id}",
            json={"allow_private_targets": True},
        )
        assert_error(resp, 401, "UNAUTHORIZED")
        assert_error(await persona.get("/operator/regions/default/grants"), 401, "UNAUTHORIZED")
