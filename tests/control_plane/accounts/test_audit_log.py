"""GET /api/v1/audit-log: the org's mutations, filtered, paginated, secrets redacted; retention."""

from __future__ import annotations

import uuid

import psycopg

from control_plane.domain.audit.service import purge
from tests.conftest import Persona, assert_error

SECRET = "s3cr3t-bearer-value-never-shown"
TARGET = {
    "name": "api",
    "check": {"type": "http", "url": "https://example.com", "bearer_token": SECRET},
}


async def test_mutations_are_listed_newest_first_with_secrets_redacted(owner: Persona) -> None:
    created = (await owner.post("/api/v1/targets", json=TARGET)).json()
    assert (await owner.patch(f"/api/v1/targets/{created['id']}", json={"name": "b"})).is_success
    resp = await owner.get("/api/v1/audit-log")
    assert resp.status_code == 200, resp.text
    page = resp.json()
    assert page["total"] == 2 and page["limit"] == 50 and page["offset"] == 0
    update, create = page["items"]
    assert (create["action"], update["action"]) == ("target.create", "target.update")
    assert create["resource_type"] == "target" and create["resource_id"] == created["id"]
    assert create["actor_type"] == "api_key" and create["actor_id"]
    assert create["before"] is None and create["after"]["name"] == "api"
    assert update["before"]["name"] == "api" and update["after"]["name"] == "b"
    assert SECRET not in resp.text and "***" in resp.text


async def test_filters_and_paging(owner: Persona) -> None:
    for i in range(3):
        resp = await owner.post("/api/v1/targets", json={**TARGET, "name": f"t{i}"})
        assert resp.status_code == 201
    key = (await owner.post("/api/v1/api-keys", json={"name": "k"})).json()
    page = (await owner.get("/api/v1/audit-log?action=target.create&limit=2")).json()
    assert page["total"] == 3 and len(page["items"]) == 2
    page = (await owner.get("/api/v1/audit-log?resource_type=api_key")).json()
    assert [e["resource_id"] for e in page["items"]] == [key["id"]]
    assert key["key"] not in str(page)
    actor = page["items"][0]["actor_id"]
    page = (await owner.get(f"/api/v1/audit-log?actor_id={actor}")).json()
    assert page["total"] == 4
    page = (await owner.get("/api/v1/audit-log?from=2100-01-01T00:00:00Z")).json()
    assert page["total"] == 0 and page["items"] == []
    page = (await owner.get("/api/v1/audit-log?to=2100-01-01T00:00:00Z&offset=3")).json()
    assert page["total"] == 4 and len(page["items"]) == 1


async def test_bad_filters(owner: Persona) -> None:
    for query, field in (
        ("actor_id=nope", "/actor_id"),
        ("from=yesterday", "/from"),
        ("limit=0", None),
        ("offset=-1", None),
    ):
        resp = await owner.get(f"/api/v1/audit-log?{query}")
        assert resp.status_code == 400, (query, resp.text)
        if field:
            assert resp.json()["error"]["field"] == field


async def test_another_org_sees_nothing_of_it(owner: Persona, outsider: Persona) -> None:
    assert (await owner.post("/api/v1/targets", json=TARGET)).status_code == 201
    page = (await outsider.get("/api/v1/audit-log")).json()
    assert page["total"] == 0


async def test_only_keys_with_audit_read(owner: Persona) -> None:
    ro = (await owner.post("/api/v1/api-keys", json={"name": "r", "scopes": ["read_only"]})).json()
    au = (await owner.post("/api/v1/api-keys", json={"name": "a", "scopes": ["audit:read"]})).json()
    resp = await owner.get("/api/v1/audit-log", headers={"Authorization": f"Bearer {ro['key']}"})
    assert_error(resp, 403, "FORBIDDEN")
    resp = await owner.get("/api/v1/audit-log", headers={"Authorization": f"Bearer {au['key']}"})
    assert resp.status_code == 200


async def test_retention_deletes_old_rows_only(owner: Persona, db_url: str) -> None:
    for i in range(2):
        assert (await owner.post("/api/v1/targets", json={**TARGET, "name": f"t{i}"})).is_success
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE audit_log SET at = now() - interval '40 days' WHERE id = "
            "(SELECT id FROM audit_log ORDER BY at LIMIT 1)"
        )
        assert await purge(conn, 0) == 0
        assert await purge(conn, 30) == 1
        left = await (await conn.execute("SELECT count(*) FROM audit_log")).fetchone()
    assert left is not None and left[0] == 1


async def test_operator_actions_on_plans_are_audited(
    operator: Persona, owner: Persona, anon: Persona
) -> None:
    plan = f"team-{uuid.uuid4().hex[:8]}"
    body = {"id": plan, "name": "Team", "rate_api_writes": 60}
    assert (await operator.post("/operator/plans", json=body)).status_code == 201
    # A refused change is not in the log (it rolled back with the change).
    assert_error(await operator.post("/operator/plans", json=body), 409, "PLAN_EXISTS")
    resp = await operator.patch(f"/operator/plans/{plan}", json={"rate_api_writes": 120})
    assert resp.status_code == 200, resp.text
    resp = await operator.put(f"/operator/orgs/{owner.org_id}/plan", json={"plan_id": plan})
    assert resp.status_code == 200, resp.text
    resp = await operator.put(f"/operator/orgs/{owner.org_id}/plan", json={"plan_id": "unlimited"})
    assert resp.status_code == 200, resp.text
    assert (await operator.delete(f"/operator/plans/{plan}")).status_code == 204

    resp = await operator.get(f"/operator/audit-log?resource_type=plan&resource_id={plan}")
    assert resp.status_code == 200, resp.text
    page = resp.json()
    assert [e["action"] for e in page["items"]] == ["plan.delete", "plan.update", "plan.create"]
    deleted, updated, created = page["items"]
    for e in page["items"]:
        assert e["actor_type"] == "operator" and e["actor_id"] is None and e["org_id"] is None
        assert e["request_id"]  # the source address too, where the client has one
    assert created["before"] is None and created["after"]["rate_api_writes"] == 60
    assert updated["before"]["rate_api_writes"] == 60
    assert updated["after"]["rate_api_writes"] == 120
    assert deleted["before"]["id"] == plan and deleted["after"] is None
    # The assignments are the org's: in the operator's log by org, and in the org's own log.
    resp = await operator.get(f"/operator/audit-log?org_id={owner.org_id}")
    assigned = resp.json()["items"]
    assert [e["action"] for e in assigned] == ["org.plan_assign", "org.plan_assign"]
    assert assigned[1]["after"]["plan_id"] == plan and assigned[0]["before"]["plan_id"] == plan
    own = (await owner.get("/api/v1/audit-log")).json()["items"]
    assert [e["action"] for e in own] == ["org.plan_assign", "org.plan_assign"]
    # What belongs to no org is no tenant's to read.
    resp = await owner.get(f"/api/v1/audit-log?resource_id={plan}")
    assert resp.json()["total"] == 0
    # Filters, bad input and the operator token.
    resp = await operator.get(f"/operator/audit-log?action=plan.update&resource_id={plan}")
    assert resp.json()["total"] == 1
    for query, field in (("org_id=nope", "/org_id"), ("from=yesterday", "/from")):
        resp = await operator.get(f"/operator/audit-log?{query}")
        assert_error(resp, 400, "INVALID_QUERY_PARAM", field)
    assert_error(await anon.get("/operator/audit-log"), 401, "UNAUTHORIZED")
    assert_error(await owner.get("/operator/audit-log"), 401, "UNAUTHORIZED")


async def test_operator_actions_on_the_denylist_are_audited(operator: Persona) -> None:
    value = f"evil-{uuid.uuid4().hex[:8]}.example"
    resp = await operator.post(
        "/operator/abuse/denylist", json={"kind": "domain", "value": value, "reason": "phishing"}
    )
    assert resp.status_code == 201, resp.text
    entry = resp.json()
    assert (await operator.delete(f"/operator/abuse/denylist/{entry['id']}")).status_code == 204
    resp = await operator.get(f"/operator/audit-log?resource_id={entry['id']}")
    removed, added = resp.json()["items"]
    assert (added["action"], removed["action"]) == ("denylist.create", "denylist.delete")
    assert added["resource_type"] == "denylist_entry" and added["actor_type"] == "operator"
    assert added["before"] is None and added["after"]["value"] == value
    assert removed["before"]["reason"] == "phishing" and removed["after"] is None
    # A second delete of the same entry is a 404 and adds nothing.
    resp = await operator.delete(f"/operator/abuse/denylist/{entry['id']}")
    assert resp.status_code == 404
    resp = await operator.get(f"/operator/audit-log?resource_id={entry['id']}")
    assert resp.json()["total"] == 2
