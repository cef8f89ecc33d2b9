"""GET /api/v1/regions: the enabled-region catalog tenants assign targets to."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Persona, assert_error

HTTP_CHECK = {"type": "http", "url": "https://example.com/health"}


async def add_region(operator: Persona, region_id: str, name: str, **fields: Any) -> None:
    resp = await operator.post("/operator/regions", json={"id": region_id, "name": name, **fields})
    assert resp.status_code == 201, resp.text


async def test_catalog_lists_enabled_regions_only(operator: Persona, owner: Persona) -> None:
    await add_region(operator, "eu-west", "EU West", location="Dublin")
    await add_region(operator, "us-east", "US East", enabled=False)
    resp = await owner.get("/api/v1/regions")
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == "private, max-age=10"
    assert resp.json() == {
        "items": [
            # The test deployment allows private targets everywhere (tests/stack.py).
            {
                "id": "default",
                "name": "Default",
                "location": "local",
                "allow_private_targets": True,
            },
            {
                "id": "eu-west",
                "name": "EU West",
                "location": "Dublin",
                "allow_private_targets": True,
            },
        ],
        "total": 2,
        "limit": 50,
        "offset": 0,
    }


async def test_catalog_is_the_same_for_every_org(owner: Persona, outsider: Persona) -> None:
    mine = await owner.get("/api/v1/regions")
    theirs = await outsider.get("/api/v1/regions")
    assert mine.status_code == theirs.status_code == 200
    assert mine.json() == theirs.json()


async def test_catalog_is_paginated(operator: Persona, owner: Persona) -> None:
    for rid in ("ap-south", "eu-west", "us-east"):
        await add_region(operator, rid, rid.upper())
    page = (await owner.get("/api/v1/regions", params={"limit": 2, "offset": 1})).json()
    assert [r["id"] for r in page["items"]] == ["default", "eu-west"]
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)
    capped = (await owner.get("/api/v1/regions", params={"limit": 5000})).json()
    assert capped["limit"] == 1000


@pytest.mark.parametrize("params", [{"limit": 0}, {"offset": -3}, {"limit": "many"}])
async def test_catalog_rejects_bad_paging(owner: Persona, params: dict[str, Any]) -> None:
    resp = await owner.get("/api/v1/regions", params=params)
    assert_error(resp, 400, "INVALID_QUERY_PARAM", "/" + next(iter(params)))


async def test_catalog_needs_an_org_api_token(anon: Persona, operator: Persona) -> None:
    assert_error(await anon.get("/api/v1/regions"), 401, "UNAUTHORIZED")
    # The operator secret is not an API token.
    assert_error(await operator.get("/api/v1/regions"), 401, "UNAUTHORIZED")
    bad = {"Authorization": "Bearer vgl_" + "x" * 40}
    assert_error(await anon.get("/api/v1/regions", headers=bad), 401, "UNAUTHORIZED")


async def test_disabled_region_leaves_the_catalog_and_cannot_be_assigned(
    operator: Persona, owner: Persona
) -> None:
    await add_region(operator, "eu-west", "EU West")
    created = await owner.post("/api/v1/targets", json={"name": "site", "check": HTTP_CHECK})
    assert created.status_code == 201, created.text
    regions_path = f"/api/v1/targets/{created.json()['id']}/regions"
    resp = await owner.put(regions_path, json={"regions": ["eu-west"]})
    assert resp.status_code == 200, resp.text

    disabled = await operator.patch("/operator/regions/eu-west", json={"enabled": False})
    assert disabled.status_code == 200, disabled.text
    catalog = (await owner.get("/api/v1/regions")).json()
    assert [r["id"] for r in catalog["items"]] == ["default"]
    assert catalog["total"] == 1
    resp = await owner.put(regions_path, json={"regions": ["default", "eu-west"]})
    assert_error(resp, 400, "UNKNOWN_REGION", "/regions/1")

    await operator.patch("/operator/regions/eu-west", json={"enabled": True})
    assert [r["id"] for r in (await owner.get("/api/v1/regions")).json()["items"]] == [
        "default",
        "eu-west",
    ]
    resp = await owner.put(regions_path, json={"regions": ["default", "eu-west"]})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"regions": ["default", "eu-west"]}
