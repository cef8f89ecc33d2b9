"""Alert rules reach the outbox: the engine's open writes one row per channel a rule binds to the
target (by tag, for a target created after the rule), a channel bound both by the target's own
``alerts`` and by a rule is told once, and a disabled rule binds nothing."""

from __future__ import annotations

from typing import Any

from tests.conftest import Persona

CHANNELS = "/api/v1/notification-channels"


async def _channel(owner: Persona, name: str) -> str:
    resp = await owner.post(
        CHANNELS,
        json={"name": name, "config": {"type": "webhook", "url": f"https://{name}.example.com/"}},
    )
    assert resp.status_code == 201, resp.text
    cid: str = resp.json()["id"]
    return cid


async def test_rules_bind_channels_to_the_open_and_recovery(
    owner: Persona, operator: Persona, app: Any, db_url: str
) -> None:
    from tests.control_plane.incidents.test_incidents import HISTORY_INTERVAL, Probe
    from tests.monitoring_helpers import make_agent

    own, ruled, idle = [await _channel(owner, n) for n in ("own", "ruled", "idle")]
    resp = await owner.post(
        "/api/v1/alert-rules",
        json={"name": "prod", "channels": [ruled, own], "apply_to": {"tags": ["production"]}},
    )
    assert resp.status_code == 201, resp.text
    resp = await owner.post(
        "/api/v1/alert-rules",
        json={"name": "off", "channels": [idle], "apply_to": {"tags": ["production"]}},
    )
    off = resp.json()["id"]
    resp = await owner.patch(f"/api/v1/alert-rules/{off}", json={"enabled": False})
    assert resp.status_code == 200, resp.text

    agent = await make_agent(operator)
    resp = await owner.post(
        "/api/v1/targets",
        json={
            "name": "site",
            "check": {"type": "http", "url": "https://example.com/"},
            "interval": HISTORY_INTERVAL,
            "alert_confirmations": 2,
            "tags": ["production"],
            "alerts": [{"channel_id": own}],
        },
    )
    assert resp.status_code == 201, resp.text
    target = resp.json()
    probe = Probe(app, db_url, target)
    for _ in range(2):
        await probe.round({agent: "down"})
    (incident,) = (await owner.get(f"/api/v1/targets/{target['id']}/incidents")).json()["items"]
    url = f"/api/v1/incidents/{incident['id']}/notifications"
    items = (await owner.get(url)).json()["items"]
    assert sorted((n["kind"], n["channel_id"]) for n in items) == sorted(
        [("open", own), ("open", ruled)]
    )
    for _ in range(2):
        await probe.round({agent: "up"})
    items = (await owner.get(url)).json()["items"]
    assert sorted((n["kind"], n["channel_id"]) for n in items) == sorted(
        [("open", own), ("open", ruled), ("recovery", own), ("recovery", ruled)]
    )
