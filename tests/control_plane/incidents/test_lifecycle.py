"""Acknowledge, resolve, list filters and narration of incidents, over the real engine."""

from __future__ import annotations

from typing import Any

from litestar import Litestar

from tests.conftest import Persona, assert_error
from tests.control_plane.incidents.test_incidents import HISTORY_INTERVAL, Probe, incidents
from tests.monitoring_helpers import AgentHandle, make_agent, make_target


async def one_region_target(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> tuple[dict[str, Any], AgentHandle, Probe]:
    agent = await make_agent(operator, region="us-east", name="east")
    target = await make_target(owner, interval=HISTORY_INTERVAL, alert_confirmations=2)
    resp = await owner.put(f"/api/v1/targets/{target['id']}/regions", json={"regions": ["us-east"]})
    assert resp.status_code == 200, resp.text
    return target, agent, Probe(app, db_url, target)


async def open_incident(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> tuple[dict[str, Any], AgentHandle, Probe, dict[str, Any]]:
    target, agent, probe = await one_region_target(owner, operator, app, db_url)
    await probe.round({agent: "down"})
    await probe.round({agent: "down"})
    (inc,) = await incidents(owner, target["id"])
    return target, agent, probe, inc


async def test_acknowledge_then_resolve_records_who_and_when(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    _, _, _, inc = await open_incident(owner, operator, app, db_url)
    assert inc["state"] == "open" and inc["severity"] == "critical"
    assert inc["acknowledged_at"] is None and inc["in_maintenance"] is False

    resp = await owner.post(
        f"/api/v1/incidents/{inc['id']}/acknowledge", json={"note": "looking into it"}
    )
    assert resp.status_code == 200, resp.text
    acked = resp.json()
    assert acked["state"] == "acknowledged"
    assert acked["acknowledged_by"].startswith("api_key:")
    assert acked["acknowledged_at"] is not None
    assert acked["acknowledge_note"] == "looking into it"
    assert_error(
        await owner.post(f"/api/v1/incidents/{inc['id']}/acknowledge"),
        409,
        "INCIDENT_ALREADY_ACKNOWLEDGED",
    )

    # No body at all is fine: the note is optional.
    resp = await owner.post(f"/api/v1/incidents/{inc['id']}/resolve")
    assert resp.status_code == 200, resp.text
    resolved = resp.json()
    assert resolved["state"] == "resolved" and resolved["resolve_note"] is None
    assert resolved["resolved_by"] == acked["acknowledged_by"]
    assert resolved["acknowledge_note"] == "looking into it"
    assert_error(
        await owner.post(f"/api/v1/incidents/{inc['id']}/resolve", json={"note": "again"}),
        409,
        "INCIDENT_ALREADY_RESOLVED",
    )
    assert_error(
        await owner.post(f"/api/v1/incidents/{inc['id']}/acknowledge"), 409, "INCIDENT_RESOLVED"
    )
    got = (await owner.get(f"/api/v1/incidents/{inc['id']}")).json()
    assert got["state"] == "resolved" and got["updates"] == []


async def test_manual_resolve_of_a_down_target_opens_nothing_until_it_recovers_and_fails(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    target, agent, probe, inc = await open_incident(owner, operator, app, db_url)
    resp = await owner.post(f"/api/v1/incidents/{inc['id']}/resolve", json={"note": "known"})
    assert resp.status_code == 200, resp.text
    # Still down: the resolve is honoured and no new incident opens (no ping-pong).
    for _ in range(4):
        await probe.round({agent: "down"})
    (same,) = await incidents(owner, target["id"])
    assert same["id"] == inc["id"] and same["state"] == "resolved"
    assert same["resolve_note"] == "known" and same["ended_at"] is None
    # It recovers: the engine ends the outage and keeps the person's resolve.
    await probe.round({agent: "up"})
    await probe.round({agent: "up"})
    (ended,) = await incidents(owner, target["id"])
    assert ended["ended_at"] is not None and ended["resolved_at"] == same["resolved_at"]
    assert ended["resolved_by"] == same["resolved_by"]
    # It fails again: a new incident opens.
    await probe.round({agent: "down"})
    await probe.round({agent: "down"})
    new, old = await incidents(owner, target["id"])
    assert old["id"] == inc["id"] and new["id"] != inc["id"]
    assert new["state"] == "open" and new["resolved_at"] is None


async def test_engine_recovery_resolves_the_incident(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    target, agent, probe, _ = await open_incident(owner, operator, app, db_url)
    await probe.round({agent: "up"})
    await probe.round({agent: "up"})
    (ended,) = await incidents(owner, target["id"])
    assert ended["state"] == "resolved" and ended["resolved_by"] is None
    assert ended["resolved_at"] == ended["ended_at"]


async def test_list_filters_status_and_severity(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    _, _, _, inc = await open_incident(owner, operator, app, db_url)

    async def ids(query: str) -> list[str]:
        resp = await owner.get(f"/api/v1/incidents?{query}")
        assert resp.status_code == 200, resp.text
        return [i["id"] for i in resp.json()["items"]]

    assert await ids("status=open") == [inc["id"]]
    assert await ids("status=open,acknowledged") == [inc["id"]]
    assert await ids("status=down") == [inc["id"]]
    assert await ids("status=acknowledged") == []
    assert await ids("severity=critical") == [inc["id"]]
    assert await ids("severity=minor") == []
    await owner.post(f"/api/v1/incidents/{inc['id']}/acknowledge")
    assert await ids("status=acknowledged") == [inc["id"]]
    resp = await owner.patch(f"/api/v1/incidents/{inc['id']}", json={"severity": "minor"})
    assert resp.status_code == 200, resp.text
    assert await ids("severity=minor") == [inc["id"]]
    assert await ids("status=acknowledged&severity=critical") == []
    assert_error(await owner.get("/api/v1/incidents?status=bogus"), 400, "INVALID_QUERY_PARAM")
    assert_error(await owner.get("/api/v1/incidents?severity=huge"), 400, "INVALID_QUERY_PARAM")


async def test_narration_patch_null_clears_omitted_leaves_alone(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    _, _, _, inc = await open_incident(owner, operator, app, db_url)
    url = f"/api/v1/incidents/{inc['id']}"
    resp = await owner.patch(
        url,
        json={"public_title": "API errors", "public_description": "Some 5xx", "severity": "major"},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["public_title"] == "API errors" and body["severity"] == "major"
    assert body["severity_set"] is True
    resp = await owner.patch(url, json={"public_description": None})
    body = resp.json()
    assert body["public_title"] == "API errors" and body["public_description"] is None
    assert body["severity"] == "major"
    resp = await owner.patch(url, json={"severity": None})
    body = resp.json()
    # Cleared: derived from the status again.
    assert body["severity"] == "critical" and body["severity_set"] is False
    assert body["public_title"] == "API errors"

    assert_error(await owner.patch(url, json={"severity": "huge"}), 400, "INVALID_SEVERITY")
    assert_error(await owner.patch(url, json={"public_title": ""}), 400, "INVALID_PUBLIC_TITLE")
    assert_error(
        await owner.patch(url, json={"public_title": "x" * 201}), 400, "INVALID_PUBLIC_TITLE"
    )
    assert_error(await owner.patch(url, json={"state": "resolved"}), 400, "UNKNOWN_FIELD")


async def test_timeline_updates(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    _, _, _, inc = await open_incident(owner, operator, app, db_url)
    url = f"/api/v1/incidents/{inc['id']}/updates"
    resp = await owner.post(url, json={"phase": "investigating", "message": "We are looking"})
    assert resp.status_code == 201, resp.text
    resp = await owner.post(url, json={"phase": "identified", "message": "x" * 2000})
    assert resp.status_code == 201, resp.text
    (first, second) = resp.json()["updates"]
    assert first["phase"] == "investigating" and first["message"] == "We are looking"
    assert second["phase"] == "identified" and first["created_by"].startswith("api_key:")
    got = (await owner.get(f"/api/v1/incidents/{inc['id']}")).json()
    assert [u["phase"] for u in got["updates"]] == ["investigating", "identified"]

    assert_error(
        await owner.post(url, json={"phase": "panicking", "message": "hi"}), 400, "INVALID_PHASE"
    )
    assert_error(
        await owner.post(url, json={"phase": "monitoring", "message": "x" * 2001}),
        400,
        "INVALID_MESSAGE",
    )
    assert_error(
        await owner.post(url, json={"phase": "monitoring", "message": ""}), 400, "INVALID_MESSAGE"
    )
    assert_error(await owner.post(url, json={"phase": "monitoring"}), 400, "MISSING_FIELD")


async def test_lifecycle_bad_input(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    _, _, _, inc = await open_incident(owner, operator, app, db_url)
    url = f"/api/v1/incidents/{inc['id']}/acknowledge"
    assert_error(await owner.post(url, json={"note": "x" * 2001}), 400, "INVALID_NOTE")
    assert_error(await owner.post(url, json={"note": 5}), 400, "INVALID_NOTE")
    assert_error(await owner.post(url, json={"who": "me"}), 400, "UNKNOWN_FIELD")
    assert_error(
        await owner.post(url, content=b"{nope", headers={"content-type": "application/json"}),
        400,
        "INVALID_JSON",
    )


async def test_another_orgs_incident_is_404_everywhere(
    owner: Persona, outsider: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    _, _, _, inc = await open_incident(owner, operator, app, db_url)
    base = f"/api/v1/incidents/{inc['id']}"
    for resp in (
        await outsider.get(base),
        await outsider.post(f"{base}/acknowledge"),
        await outsider.post(f"{base}/resolve", json={"note": "mine"}),
        await outsider.patch(base, json={"public_title": "hijack"}),
        await outsider.post(f"{base}/updates", json={"phase": "identified", "message": "x"}),
        await owner.get("/api/v1/incidents/not-a-uuid"),
        await owner.post("/api/v1/incidents/0192a1ce-0000-7000-8000-000000000001/resolve"),
    ):
        assert_error(resp, 404, "INCIDENT_NOT_FOUND")
    assert (await outsider.get("/api/v1/incidents")).json()["items"] == []
    got = (await owner.get(base)).json()
    assert got["state"] == "open" and got["public_title"] is None and got["updates"] == []


async def test_an_acknowledged_incident_that_recovers_is_resolved_by_the_engine(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    target, agent, probe, inc = await open_incident(owner, operator, app, db_url)
    resp = await owner.post(f"/api/v1/incidents/{inc['id']}/acknowledge", json={"note": "mine"})
    assert resp.status_code == 200, resp.text
    await probe.round({agent: "up"})
    await probe.round({agent: "up"})
    (ended,) = await incidents(owner, target["id"])
    assert ended["state"] == "resolved" and ended["resolved_by"] is None
    assert ended["acknowledged_at"] is not None and ended["acknowledge_note"] == "mine"


async def test_a_signed_in_person_is_recorded_as_the_user(
    owner: Persona, operator: Persona, app: Litestar, db_url: str
) -> None:
    from tests.control_plane.accounts.test_sessions import sign_in, user

    _, _, _, inc = await open_incident(owner, operator, app, db_url)
    uid = await user(db_url, owner.org_id, "oncall@example.com")
    me = await sign_in(owner, "oncall@example.com")
    resp = await me.post(f"/api/v1/incidents/{inc['id']}/acknowledge", json={})
    assert resp.status_code == 200, resp.text
    assert resp.json()["acknowledged_by"] == f"user:{uid}"
