"""/api/v1/alert-rules: channels, severity and threshold bound to targets by id or tag."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Litestar

from control_plane.domain.alert_rules.service import rules_for_target
from tests.conftest import Persona, assert_error
from tests.control_plane.targets.test_targets_crud import add_channel
from tests.monitoring_helpers import make_target


async def create(owner: Persona, **fields: Any) -> dict[str, Any]:
    resp = await owner.post("/api/v1/alert-rules", json=fields)
    assert resp.status_code == 201, resp.text
    assert resp.headers["location"] == f"/api/v1/alert-rules/{resp.json()['id']}"
    rule: dict[str, Any] = resp.json()
    return rule


async def test_crud_and_a_tag_rule_covers_a_target_tagged_later(
    owner: Persona, app: Litestar, db_url: str
) -> None:
    ops = await add_channel(db_url, owner.org_id, "ops")
    pager = await add_channel(db_url, owner.org_id, "pager")
    api = await make_target(owner, tags=["api"])
    rule = await create(
        owner,
        name="Production down",
        channels=[pager, ops, pager],
        severity="critical",
        threshold=3,
        apply_to={"tags": ["production"]},
    )
    assert rule["channels"] == [pager, ops]
    assert rule["apply_to"] == {"target_ids": [], "tags": ["production"]}
    assert rule["enabled"] is True and rule["write_source"] == "api"
    by_id = await create(owner, name="API", channels=[ops], apply_to={"target_ids": [api["id"]]})
    assert by_id["severity"] == "critical" and by_id["threshold"] == 2

    # A target created after the rule, tagged production, is covered without editing anything.
    later = await make_target(owner, tags=["production", "eu"])
    listed = (await owner.get(f"/api/v1/alert-rules?target_id={later['id']}")).json()
    assert [r["id"] for r in listed["items"]] == [rule["id"]]
    listed = (await owner.get(f"/api/v1/alert-rules?target_id={api['id']}")).json()
    assert [r["id"] for r in listed["items"]] == [by_id["id"]]
    all_rules = (await owner.get("/api/v1/alert-rules")).json()
    assert all_rules["total"] == 2
    async with app.state.resources.db.connection() as conn:
        (matched,) = await rules_for_target(conn, uuid.UUID(later["id"]))
    assert matched["id"] == uuid.UUID(rule["id"]) and matched["threshold"] == 3
    assert [str(c) for c in matched["channel_ids"]] == [pager, ops]

    url = f"/api/v1/alert-rules/{rule['id']}"
    assert (await owner.get(url)).json() == rule
    resp = await owner.patch(
        url, json={"severity": "minor", "enabled": False}, headers={"X-Vigil-Client": "ui"}
    )
    assert resp.status_code == 200, resp.text
    patched = resp.json()
    assert patched["severity"] == "minor" and patched["enabled"] is False
    assert patched["channels"] == [pager, ops] and patched["write_source"] == "ui"
    resp = await owner.patch(url, json={"apply_to": {"target_ids": [api["id"]], "tags": []}})
    assert resp.json()["apply_to"] == {"target_ids": [api["id"]], "tags": []}
    async with app.state.resources.db.connection() as conn:
        assert await rules_for_target(conn, uuid.UUID(later["id"])) == []

    assert (await owner.delete(url)).status_code == 204
    assert_error(await owner.get(url), 404, "ALERT_RULE_NOT_FOUND")


async def test_bad_input(owner: Persona, outsider: Persona, db_url: str) -> None:
    ops = await add_channel(db_url, owner.org_id, "ops")
    foreign_channel = await add_channel(db_url, outsider.org_id, "theirs")
    foreign_target = await make_target(outsider)
    good: dict[str, Any] = {"name": "r", "channels": [ops], "apply_to": {"tags": ["prod"]}}
    cases: list[tuple[dict[str, Any], str, str | None]] = [
        ({**good, "channels": []}, "INVALID_ALERT_CONFIG", "/channels"),
        ({**good, "channels": [str(uuid.uuid4())]}, "INVALID_ALERT_CONFIG", "/channels/0"),
        ({**good, "channels": [ops, foreign_channel]}, "INVALID_ALERT_CONFIG", "/channels/1"),
        ({**good, "channels": ["nope"]}, "INVALID_ALERT_CONFIG", "/channels/0"),
        ({**good, "severity": "apocalyptic"}, "INVALID_SEVERITY", "/severity"),
        ({**good, "threshold": 0}, "INVALID_THRESHOLD", "/threshold"),
        ({**good, "threshold": "3"}, "INVALID_THRESHOLD", "/threshold"),
        ({**good, "name": ""}, "INVALID_NAME", "/name"),
        ({**good, "name": "x" * 101}, "INVALID_NAME", "/name"),
        ({**good, "apply_to": {}}, "INVALID_APPLY_TO", "/apply_to"),
        ({**good, "apply_to": {"tags": ["has space"]}}, "INVALID_APPLY_TO", "/apply_to/tags/0"),
        (
            {**good, "apply_to": {"target_ids": [foreign_target["id"]]}},
            "INVALID_APPLY_TO",
            "/apply_to/target_ids/0",
        ),
        ({**good, "apply_to": {"monitors": []}}, "UNKNOWN_FIELD", "/apply_to/monitors"),
        ({"name": "r", "channels": [ops]}, "MISSING_FIELD", "/apply_to"),
    ]
    for body, code, field in cases:
        assert_error(await owner.post("/api/v1/alert-rules", json=body), 400, code, field)
    assert (await owner.get("/api/v1/alert-rules")).json()["total"] == 0
    rule = await create(owner, **good)
    url = f"/api/v1/alert-rules/{rule['id']}"
    assert_error(
        await owner.patch(url, json={"channels": [foreign_channel]}),
        400,
        "INVALID_ALERT_CONFIG",
        "/channels/0",
    )
    assert_error(await owner.patch(url, json={"apply_to": {}}), 400, "INVALID_APPLY_TO")
    assert (await owner.get(url)).json() == rule


async def test_another_orgs_rule_is_404(owner: Persona, outsider: Persona, db_url: str) -> None:
    ops = await add_channel(db_url, owner.org_id, "ops")
    rule = await create(owner, name="r", channels=[ops], apply_to={"tags": ["prod"]})
    url = f"/api/v1/alert-rules/{rule['id']}"
    for resp in (
        await outsider.get(url),
        await outsider.patch(url, json={"name": "mine"}),
        await outsider.delete(url),
        await owner.get("/api/v1/alert-rules/not-a-uuid"),
    ):
        assert_error(resp, 404, "ALERT_RULE_NOT_FOUND")
    assert (await outsider.get("/api/v1/alert-rules")).json()["items"] == []
    assert (await owner.get(url)).json() == rule
