"""Operator plans: CRUD, assignment with overrides, QUOTA_EXCEEDED details, MIN_CHECK_INTERVAL,
and a cap under two parallel creates (exactly one wins)."""

from __future__ import annotations

import asyncio
import uuid

from tests.conftest import Persona, assert_error

TARGET = {"name": "x", "check": {"type": "http", "url": "https://example.com"}}


async def test_plan_crud(operator: Persona) -> None:
    resp = await operator.post(
        "/operator/plans", json={"id": "team", "name": "Team", "max_targets": 3}
    )
    assert resp.status_code == 201, resp.text
    plan = resp.json()
    assert plan["max_targets"] == 3 and plan["rate_api_reads"] is None and plan["orgs"] == 0
    assert_error(
        await operator.post("/operator/plans", json={"id": "team", "name": "T"}), 409, "PLAN_EXISTS"
    )
    resp = await operator.patch(
        "/operator/plans/team", json={"max_targets": None, "rate_api_reads": 100}
    )
    assert resp.json()["max_targets"] is None and resp.json()["rate_api_reads"] == 100
    ids = [p["id"] for p in (await operator.get("/operator/plans")).json()["items"]]
    assert {"free", "pro", "business", "unlimited", "team"} <= set(ids)
    assert (await operator.delete("/operator/plans/team")).status_code == 204
    assert_error(await operator.get("/operator/plans/team"), 404, "PLAN_NOT_FOUND")


async def test_plan_bad_input(operator: Persona) -> None:
    for body in (
        {"id": "Bad Id", "name": "x"},
        {"id": "ok", "name": ""},
        {"id": "ok", "name": "x", "min_check_interval_secs": 5},
        {"id": "ok", "name": "x", "rate_api_reads": 0},
        {"id": "ok", "name": "x", "max_targets": -1},
        {"id": "ok", "name": "x", "unknown": 1},
    ):
        resp = await operator.post("/operator/plans", json=body)
        assert resp.status_code == 400, (body, resp.text)


async def test_plan_in_use_is_kept(operator: Persona, owner: Persona) -> None:
    resp = await operator.put(f"/operator/orgs/{owner.org_id}/plan", json={"plan_id": "free"})
    assert resp.status_code == 200, resp.text
    assert_error(await operator.delete("/operator/plans/free"), 409, "PLAN_IN_USE")


async def test_assign_with_overrides_and_quota_details(operator: Persona, owner: Persona) -> None:
    resp = await operator.put(
        f"/operator/orgs/{owner.org_id}/plan",
        json={"plan_id": "free", "overrides": {"max_targets": 1}},
    )
    assert resp.status_code == 200, resp.text
    limits = resp.json()
    assert limits["plan_id"] == "free" and limits["limits"]["max_targets"] == 1
    assert limits["limits"]["min_check_interval_secs"] == 300
    assert limits["overrides"]["max_targets"] == 1
    assert (await operator.get(f"/operator/orgs/{owner.org_id}/plan")).json() == limits
    assert (await owner.post("/api/v1/targets", json={**TARGET, "interval": 300})).is_success
    err = assert_error(
        await owner.post("/api/v1/targets", json={**TARGET, "interval": 300}),
        422,
        "QUOTA_EXCEEDED",
    )
    assert err["details"] == {"quota": "max_targets", "current": 1, "limit": 1, "plan": "free"}
    # The audit log of the org records the operator's change.
    log = (await owner.get("/api/v1/audit-log?action=org.plan_assign")).json()
    assert log["total"] == 1 and log["items"][0]["actor_type"] == "operator"


async def test_min_check_interval_comes_from_the_plan(operator: Persona, owner: Persona) -> None:
    await operator.put(f"/operator/orgs/{owner.org_id}/plan", json={"plan_id": "pro"})
    # A new key: the persona's own may be remembered with the old plan's floor.
    key = (await owner.post("/api/v1/api-keys", json={"name": "k"})).json()["key"]
    h = {"Authorization": f"Bearer {key}"}
    resp = await owner.post("/api/v1/targets", json={**TARGET, "interval": 30}, headers=h)
    assert_error(resp, 422, "MIN_CHECK_INTERVAL")
    resp = await owner.post("/api/v1/targets", json={**TARGET, "interval": 60}, headers=h)
    assert resp.status_code == 201


async def test_two_parallel_creates_at_the_limit_exactly_one_wins(
    operator: Persona, owner: Persona
) -> None:
    await operator.put(
        f"/operator/orgs/{owner.org_id}/plan",
        json={"plan_id": "unlimited", "overrides": {"max_targets": 1}},
    )
    results = await asyncio.gather(*(owner.post("/api/v1/targets", json=TARGET) for _ in range(4)))
    assert sorted(r.status_code for r in results) == [201, 422, 422, 422]
    listed = (await owner.get("/api/v1/targets")).json()
    assert listed["total"] == 1


async def test_assign_errors(operator: Persona, owner: Persona, anon: Persona) -> None:
    resp = await operator.put(f"/operator/orgs/{uuid.uuid4()}/plan", json={"plan_id": "free"})
    assert_error(resp, 404, "ORG_NOT_FOUND")
    resp = await operator.put(f"/operator/orgs/{owner.org_id}/plan", json={"plan_id": "nope"})
    assert_error(resp, 422, "PLAN_NOT_FOUND")
    assert_error(await operator.get("/operator/orgs/not-a-uuid/plan"), 404, "ORG_NOT_FOUND")
    resp = await anon.get("/operator/plans")
    assert resp.status_code == 401
    resp = await owner.get("/operator/plans")
    assert resp.status_code == 401
