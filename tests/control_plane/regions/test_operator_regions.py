"""/operator/regions: the instance admin's region catalog, behind the operator token."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from control_plane.app import create_app
from control_plane.settings import Settings
from tests.conftest import Persona, assert_error
from tests.stack import OPERATOR_TOKEN

HTTP_CHECK = {"type": "http", "url": "https://example.com/health"}

# Every route of the surface, with a body good enough to get past decoding.
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/operator/regions", {"id": "eu-west", "name": "EU West"}),
    ("GET", "/operator/regions", None),
    ("GET", "/operator/regions/default", None),
    ("PATCH", "/operator/regions/default", {"name": "Renamed"}),
    ("DELETE", "/operator/regions/default", None),
]


async def create_region(operator: Persona, region_id: str, **fields: Any) -> dict[str, Any]:
    body = {"id": region_id, "name": fields.pop("name", region_id.upper()), **fields}
    resp = await operator.post("/operator/regions", json=body)
    assert resp.status_code == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result


@pytest.fixture
async def closed_client(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A deployment without VIGIL_OPERATOR_ADMIN_TOKEN."""
    security = dataclasses.replace(settings.security, operator_admin_token=None)
    app = create_app(dataclasses.replace(settings, security=security))
    async with AsyncTestClient(app=app) as c:
        yield c


async def test_default_region_exists_from_the_migration(operator: Persona) -> None:
    resp = await operator.get("/operator/regions/default")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["id"] == "default"
    assert body["enabled"] is True
    assert body["allow_private_targets"] is False  # the SSRF guard is on by default
    assert body["access"] == "public"
    assert set(body) == {
        "id",
        "name",
        "location",
        "enabled",
        "allow_private_targets",
        "access",
        "created_at",
        "updated_at",
    }


async def test_create_region_returns_it_and_a_location(operator: Persona) -> None:
    resp = await operator.post(
        "/operator/regions", json={"id": "eu-west", "name": "  EU West  ", "location": "Dublin"}
    )
    assert resp.status_code == 201, resp.text
    assert resp.headers["location"] == "/operator/regions/eu-west"
    body = resp.json()
    assert body["id"] == "eu-west"
    assert body["name"] == "EU West"
    assert body["location"] == "Dublin"
    assert body["enabled"] is True
    assert (await operator.get("/operator/regions/eu-west")).json() == body


async def test_create_region_defaults_location_and_takes_enabled(operator: Persona) -> None:
    body = await create_region(operator, "us-east-1", name="US East", enabled=False)
    assert body["location"] == ""
    assert body["enabled"] is False


async def test_list_regions_is_paginated_and_ordered_by_id(operator: Persona) -> None:
    for rid in ("us-east", "ap-south", "eu-west"):
        await create_region(operator, rid)
    resp = await operator.get("/operator/regions")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [r["id"] for r in body["items"]] == ["ap-south", "default", "eu-west", "us-east"]
    assert (body["total"], body["limit"], body["offset"]) == (4, 50, 0)

    page = (await operator.get("/operator/regions", params={"limit": 2, "offset": 1})).json()
    assert [r["id"] for r in page["items"]] == ["default", "eu-west"]
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)

    capped = (await operator.get("/operator/regions", params={"limit": 50_000})).json()
    assert capped["limit"] == 1000


@pytest.mark.parametrize("params", [{"limit": 0}, {"offset": -1}])
async def test_list_regions_rejects_bad_paging(operator: Persona, params: dict[str, int]) -> None:
    resp = await operator.get("/operator/regions", params=params)
    assert_error(resp, 400, "INVALID_QUERY_PARAM", "/" + next(iter(params)))


async def test_create_existing_region_is_409(operator: Persona) -> None:
    await create_region(operator, "eu-west")
    resp = await operator.post("/operator/regions", json={"id": "eu-west", "name": "Again"})
    assert_error(resp, 409, "REGION_EXISTS", "/id")
    resp = await operator.post("/operator/regions", json={"id": "default", "name": "Again"})
    assert_error(resp, 409, "REGION_EXISTS", "/id")


@pytest.mark.parametrize(
    "region_id", ["", "-eu", "EU-west", "eu_west", "eu west", "eu.west", "eu\n", "a" * 64, "ü"]
)
async def test_create_region_rejects_a_bad_id(operator: Persona, region_id: str) -> None:
    resp = await operator.post("/operator/regions", json={"id": region_id, "name": "X"})
    assert_error(resp, 400, "INVALID_REGION_ID", "/id")


async def test_create_region_accepts_the_longest_id(operator: Persona) -> None:
    await create_region(operator, "a" + "-" * 62)


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "eu\nwest", "eu\x00west"])
async def test_create_region_rejects_a_bad_name(operator: Persona, name: str) -> None:
    resp = await operator.post("/operator/regions", json={"id": "eu-west", "name": name})
    assert_error(resp, 400, "INVALID_NAME", "/name")


@pytest.mark.parametrize("location", ["x" * 201, "Dub\x00lin", "Dub\tlin"])
async def test_create_region_rejects_a_bad_location(operator: Persona, location: str) -> None:
    resp = await operator.post(
        "/operator/regions", json={"id": "eu-west", "name": "EU", "location": location}
    )
    assert_error(resp, 400, "INVALID_LOCATION", "/location")


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"id": "eu-west", "name": "EU", "color": "blue"}, "UNKNOWN_FIELD", "/color"),
        ({"id": "eu-west"}, "MISSING_FIELD", "/name"),
        ({"id": "eu-west", "name": "EU", "enabled": "true"}, "VALIDATION_ERROR", "/enabled"),
        (
            {"id": "eu-west", "name": "EU", "allow_private_targets": "yes"},
            "VALIDATION_ERROR",
            "/allow_private_targets",
        ),
        ({"id": 7, "name": "EU"}, "INVALID_REGION_ID", "/id"),
        ({"id": "eu-west", "name": ["EU"]}, "INVALID_NAME", "/name"),
        ({"id": "eu-west", "name": "EU", "location": None}, "INVALID_LOCATION", "/location"),
    ],
)
async def test_create_region_rejects_malformed_bodies(
    operator: Persona, body: dict[str, Any], code: str, field: str
) -> None:
    assert_error(await operator.post("/operator/regions", json=body), 400, code, field)
    assert (await operator.get("/operator/regions/eu-west")).status_code == 404


async def test_create_region_rejects_invalid_json(operator: Persona) -> None:
    resp = await operator.post(
        "/operator/regions", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert_error(resp, 400, "INVALID_JSON")


async def test_patch_region_changes_only_the_given_fields(operator: Persona) -> None:
    created = await create_region(operator, "eu-west", name="EU West", location="Dublin")
    resp = await operator.patch("/operator/regions/eu-west", json={"name": "Europe West"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["name"] == "Europe West"
    assert body["location"] == "Dublin"
    assert body["enabled"] is True
    assert body["created_at"] == created["created_at"]
    assert body["updated_at"] >= created["updated_at"]

    body = (
        await operator.patch("/operator/regions/eu-west", json={"enabled": False, "location": ""})
    ).json()
    assert (body["name"], body["location"], body["enabled"]) == ("Europe West", "", False)

    unchanged = await operator.patch("/operator/regions/eu-west", json={})
    assert unchanged.status_code == 200
    assert (unchanged.json()["name"], unchanged.json()["enabled"]) == ("Europe West", False)
    assert (await operator.get("/operator/regions/eu-west")).json()["enabled"] is False


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"name": ""}, "INVALID_NAME", "/name"),
        ({"name": "y" * 101}, "INVALID_NAME", "/name"),
        ({"location": "y" * 201}, "INVALID_LOCATION", "/location"),
        ({"id": "other"}, "UNKNOWN_FIELD", "/id"),
        ({"name": None}, "INVALID_NAME", "/name"),
        ({"name": "a\x00b"}, "INVALID_NAME", "/name"),
        ({"enabled": 1}, "VALIDATION_ERROR", "/enabled"),
        ({"allow_private_targets": None}, "VALIDATION_ERROR", "/allow_private_targets"),
    ],
)
async def test_patch_region_rejects_bad_bodies(
    operator: Persona, body: dict[str, Any], code: str, field: str
) -> None:
    await create_region(operator, "eu-west", name="EU West")
    assert_error(await operator.patch("/operator/regions/eu-west", json=body), 400, code, field)
    assert (await operator.get("/operator/regions/eu-west")).json()["name"] == "EU West"


@pytest.mark.parametrize("region_id", ["nowhere", "NOT-A-SLUG", "eu%00west", "a" * 300])
async def test_unknown_region_is_404_on_every_route(operator: Persona, region_id: str) -> None:
    path = f"/operator/regions/{region_id}"
    assert_error(await operator.get(path), 404, "REGION_NOT_FOUND")
    assert_error(await operator.patch(path, json={"name": "X"}), 404, "REGION_NOT_FOUND")
    assert_error(await operator.delete(path), 404, "REGION_NOT_FOUND")


async def test_delete_unused_region(operator: Persona) -> None:
    await create_region(operator, "eu-west")
    resp = await operator.delete("/operator/regions/eu-west")
    assert resp.status_code == 204, resp.text
    assert_error(await operator.get("/operator/regions/eu-west"), 404, "REGION_NOT_FOUND")
    assert_error(await operator.delete("/operator/regions/eu-west"), 404, "REGION_NOT_FOUND")
    # The id is free again.
    await create_region(operator, "eu-west")


async def test_delete_region_used_by_an_agent_is_409(operator: Persona) -> None:
    await create_region(operator, "eu-west")
    agent = await operator.post("/operator/agents", json={"name": "a1", "region": "eu-west"})
    assert agent.status_code == 201, agent.text
    err = assert_error(await operator.delete("/operator/regions/eu-west"), 409, "REGION_IN_USE")
    assert err["details"] == {"targets": 0, "agents": 1}
    # A revoked agent still refers to the region; only deleting it frees the region.
    await operator.post(f"/operator/agents/{agent.json()['id']}/revoke")
    assert_error(await operator.delete("/operator/regions/eu-west"), 409, "REGION_IN_USE")
    assert (await operator.delete(f"/operator/agents/{agent.json()['id']}")).status_code == 204
    assert (await operator.delete("/operator/regions/eu-west")).status_code == 204


async def test_delete_region_used_by_a_target_is_409(operator: Persona, owner: Persona) -> None:
    await create_region(operator, "eu-west")
    target = await owner.post("/api/v1/targets", json={"name": "site", "check": HTTP_CHECK})
    assert target.status_code == 201, target.text
    tid = target.json()["id"]
    put = await owner.put(f"/api/v1/targets/{tid}/regions", json={"regions": ["eu-west"]})
    assert put.status_code == 200, put.text

    err = assert_error(await operator.delete("/operator/regions/eu-west"), 409, "REGION_IN_USE")
    assert err["details"] == {"targets": 1, "agents": 0}
    # The default region is in use by nothing else once the target moved away from it.
    assert (await operator.delete("/operator/regions/default")).status_code == 204
    assert (await operator.get("/operator/regions/eu-west")).status_code == 200

    assert (await owner.delete(f"/api/v1/targets/{tid}")).status_code == 204
    assert (await operator.delete("/operator/regions/eu-west")).status_code == 204


async def test_delete_region_referenced_by_another_table_is_409(
    operator: Persona, db_url: str
) -> None:
    await create_region(operator, "eu-west")
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "CREATE TABLE region_refs (region_id text NOT NULL,"
            " CONSTRAINT region_refs_region_fkey FOREIGN KEY (region_id) REFERENCES regions (id))"
        )
        await conn.execute("INSERT INTO region_refs VALUES ('eu-west')")
    err = assert_error(await operator.delete("/operator/regions/eu-west"), 409, "REGION_IN_USE")
    assert err["details"] == {"targets": 0, "agents": 0, "constraint": "region_refs_region_fkey"}
    assert (await operator.get("/operator/regions/eu-west")).status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_wrong_operator_token_is_401(
    client: AsyncTestClient[Litestar], method: str, path: str, body: dict[str, Any] | None
) -> None:
    for headers in ({"Authorization": "Bearer not-the-operator-token"}, {}):
        resp = await client.request(method, path, json=body, headers=headers)
        assert_error(resp, 401, "UNAUTHORIZED")
        assert resp.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_org_api_token_does_not_open_the_operator_surface(
    owner: Persona, method: str, path: str, body: dict[str, Any] | None
) -> None:
    assert_error(await owner.request(method, path, json=body), 401, "UNAUTHORIZED")


async def test_rejected_operator_calls_change_nothing(
    operator: Persona, owner: Persona, anon: Persona
) -> None:
    for persona in (owner, anon):
        await persona.post("/operator/regions", json={"id": "eu-west", "name": "EU"})
        await persona.patch("/operator/regions/default", json={"name": "Hacked"})
        await persona.delete("/operator/regions/default")
    assert (await operator.get("/operator/regions/eu-west")).status_code == 404
    assert (await operator.get("/operator/regions/default")).json()["name"] == "Default"


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_operator_surface_is_404_when_the_admin_token_is_unset(
    closed_client: AsyncTestClient[Litestar],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    for headers in ({"Authorization": f"Bearer {OPERATOR_TOKEN}"}, {}):
        resp = await closed_client.request(method, path, json=body, headers=headers)
        assert_error(resp, 404, "NOT_FOUND")
