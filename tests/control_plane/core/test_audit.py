"""Every mutation of an org's targets leaves an audit row, in the same transaction, with the
resource as reads show it (credentials redacted) and the request it came from."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from tests.conftest import Persona, assert_error

SECRET = "s3cr3t-canary-token"


async def audit_rows(db_url: str) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(db_url, row_factory=dict_row) as conn:
        return await (await conn.execute("SELECT * FROM audit_log ORDER BY at, id")).fetchall()


async def test_target_mutations_are_audited_with_secrets_redacted(
    owner: Persona, outsider: Persona, db_url: str
) -> None:
    check = {"type": "http", "url": "https://example.com", "bearer_token": SECRET}
    created = await owner.post(
        "/api/v1/targets", json={"name": "api", "check": check}, headers={"X-Request-ID": "req-1"}
    )
    assert created.status_code == 201, created.text
    tid = created.json()["id"]
    assert (await owner.patch(f"/api/v1/targets/{tid}", json={"name": "api2"})).status_code == 200
    resp = await owner.put(f"/api/v1/targets/{tid}/regions", json={"regions": ["default"]})
    assert resp.status_code == 200, resp.text
    # A refused change leaves nothing: the row is written in the change's own transaction.
    assert_error(
        await owner.patch(f"/api/v1/targets/{tid}", json={"interval": 1}), 422, "MIN_CHECK_INTERVAL"
    )
    assert (await owner.delete(f"/api/v1/targets/{tid}")).status_code == 204
    hb = await owner.post(
        "/api/v1/targets", json={"name": "cron", "check": {"type": "heartbeat"}, "interval": 60}
    )
    assert hb.status_code == 201, hb.text

    rows = await audit_rows(db_url)
    assert [r["action"] for r in rows] == [
        "target.create",
        "target.update",
        "target.set_regions",
        "target.delete",
        "target.create",
    ]
    assert {r["org_id"] for r in rows} == {owner.org_id}
    assert all(r["actor_type"] == "api_key" and r["actor_id"] for r in rows)
    first = rows[0]
    assert first["request_id"] == "req-1" and first["resource_id"] == tid
    assert first["before"] is None and first["after"]["check"]["bearer_token"] == "***"
    assert rows[1]["before"]["name"] == "api" and rows[1]["after"]["name"] == "api2"
    assert rows[3]["after"] is None and rows[3]["before"]["name"] == "api2"
    # Neither a credential nor a heartbeat token (itself a credential) is ever kept.
    text = str(rows)
    assert SECRET not in text
    assert hb.json()["heartbeat"]["token"] not in text
    # Another org's log is its own.
    assert (await outsider.get("/api/v1/targets")).status_code == 200
    assert all(r["org_id"] == owner.org_id for r in await audit_rows(db_url))
