"""An alert rule's ``threshold`` and ``severity`` applied: the rule's channels hear of an outage
only once it has failed ``threshold`` consecutive checks (the target's own ``alerts`` at its
``alert_confirmations``), and a delivery through the rule carries the rule's severity
(PagerDuty: Major -> error) unless a person set the incident's."""

from __future__ import annotations

from typing import Any

from tests.conftest import Persona
from tests.control_plane.incidents.test_incidents import HISTORY_INTERVAL, Probe
from tests.control_plane.notifications.conftest import Env
from tests.monitoring_helpers import make_agent

ROUTING_KEY = "R" * 32


async def test_threshold_delays_the_rules_channels_and_severity_is_the_rules(
    env: Env, operator: Persona
) -> None:
    pd = await env.channel({"type": "pagerduty", "routing_key": ROUTING_KEY}, name="pd")
    own = await env.channel({"type": "webhook", "url": env.rec.url + "/own"}, name="own")
    resp = await env.owner.post(
        "/api/v1/alert-rules",
        json={
            "name": "sustained",
            "channels": [pd],
            "threshold": 4,
            "severity": "major",
            "apply_to": {"tags": ["production"]},
        },
    )
    assert resp.status_code == 201, resp.text
    agent = await make_agent(operator)
    resp = await env.owner.post(
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
    target: dict[str, Any] = resp.json()
    probe = Probe(env.app, env.db_url, target)
    for _ in range(2):
        await probe.round({agent: "down"})
    (incident,) = (await env.owner.get(f"/api/v1/targets/{target['id']}/incidents")).json()["items"]
    assert [n["channel_id"] for n in await env.notifications(incident["id"])] == [own]
    await env.deliver()
    assert [s.path for s in env.rec.seen] == ["/own"]
    assert env.rec.seen[0].json()["incident"]["severity"] == "critical"

    await probe.round({agent: "down"})  # three failed checks: still below the rule's four
    assert len(await env.notifications(incident["id"])) == 1
    await probe.round({agent: "down"})
    kinds = sorted((n["channel_id"], n["kind"]) for n in await env.notifications(incident["id"]))
    assert kinds == sorted([(own, "open"), (pd, "open")])
    await env.deliver()
    trigger = env.rec.seen[-1].json()
    assert trigger["event_action"] == "trigger"
    assert trigger["payload"]["severity"] == "error"  # the rule's Major

    # A person's severity on the incident wins over the rule's from then on.
    resp = await env.owner.patch(f"/api/v1/incidents/{incident['id']}", json={"severity": "minor"})
    assert resp.status_code == 200, resp.text
    rows = await env.sql(
        "SELECT severity FROM notifications WHERE incident_id = %s AND channel_id = %s",
        incident["id"],
        pd,
    )
    assert [r["severity"] for r in rows] == ["major"]
