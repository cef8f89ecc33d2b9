"""Email channels against a local SMTP server (aiosmtpd): the verification link round trip,
the gate, the resend cap; the test-send endpoints against a local receiver; the incident
engine writing the outbox in its own transaction; key rotation of channel secrets."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from control_plane.settings import MailSettings, Settings
from tests.conftest import Persona, assert_error
from tests.control_plane.core.test_mail import _free_port, _Inbox
from tests.control_plane.notifications.conftest import Env, notify_settings, started
from tests.control_plane.notifications.receiver import threaded_receiver

BASE = "/api/v1/notification-channels"


@dataclasses.dataclass
class MailEnv:
    env: Env
    inbox: _Inbox

    def link(self, n: int = -1) -> str:
        msg = message_from_bytes(self.inbox.messages[n].content)
        body = msg.get_payload(decode=True).decode()
        m = re.search(r"(/verify/channel/[A-Za-z0-9_-]+)", body)
        assert m, body
        return m.group(1)


@pytest.fixture
async def menv(settings: Settings, db_url: str) -> AsyncIterator[MailEnv]:
    inbox = _Inbox(refuse="nobody@example.com")
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        async with threaded_receiver() as rec:
            s = notify_settings(settings, rec.url)
            s = dataclasses.replace(
                s, mail=MailSettings(host="127.0.0.1", port=port, security="none")
            )
            async with started(s, db_url, rec) as env:
                yield MailEnv(env, inbox)
    finally:
        controller.stop()


async def test_email_verification_round_trip_and_delivery(menv: MailEnv) -> None:
    env = menv.env
    cid = await env.channel({"type": "email", "to": "oncall@example.com"}, name="mail")
    got = (await env.owner.get(f"{BASE}/{cid}")).json()
    assert got["verified"] is False and got["config"] == {
        "type": "email",
        "to": "oncall@example.com",
    }
    assert len(menv.inbox.messages) == 1
    assert menv.inbox.messages[0].rcpt_tos == ["oncall@example.com"]
    assert_error(await env.owner.post(f"{BASE}/{cid}/test"), 422, "CHANNEL_UNVERIFIED")
    # An unverified channel's incident mail is refused, not sent.
    iid = await env.open_incident(await env.target([cid]))
    await env.deliver()
    (n,) = await env.notifications(iid)
    assert n["state"] == "dead" and n["attempt_log"][0]["error"] == "email address not verified"
    link = menv.link()
    resp = await env.owner.client.get(link)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"channel_id": cid, "verified": True}
    # Single use.
    assert_error(await env.owner.client.get(link), 404, "VERIFICATION_NOT_FOUND")
    assert (await env.owner.get(f"{BASE}/{cid}")).json()["verified"] is True
    resp = await env.owner.post(f"{BASE}/{cid}/test")
    assert resp.status_code == 200, resp.text
    assert resp.json()["status_code"] == 250
    await env.owner.post(f"/api/v1/incidents/{iid}/notifications/{n['id']}/retry")
    await env.deliver()
    (n,) = await env.notifications(iid)
    assert n["state"] == "delivered" and n["attempt_log"][-1]["status_code"] == 250
    subjects = [message_from_bytes(m.content)["Subject"] for m in menv.inbox.messages]
    assert subjects[-1].startswith("[Vigil] DOWN: site")
    # A new address resets the gate and sends a new link.
    resp = await env.owner.patch(
        f"{BASE}/{cid}", json={"config": {"type": "email", "to": "sre@example.com"}}
    )
    assert resp.json()["verified"] is False
    assert menv.inbox.messages[-1].rcpt_tos == ["sre@example.com"]


async def test_resend_verification_capped_and_not_verifiable(menv: MailEnv) -> None:
    env = menv.env
    cid = await env.channel({"type": "email", "to": "oncall@example.com"}, name="mail")
    for _ in range(5):
        assert (await env.owner.post(f"{BASE}/{cid}/resend-verification")).status_code == 200
    assert_error(
        await env.owner.post(f"{BASE}/{cid}/resend-verification"),
        422,
        "CHANNEL_VERIFICATION_LIMIT",
    )
    # Only the latest link works.
    assert (await env.owner.client.get(menv.link(1))).status_code == 404
    assert (await env.owner.client.get(menv.link())).status_code == 200
    slack = await env.channel(
        {"type": "slack", "webhook_url": "https://hooks.slack.com/services/T/B/C"}, name="s"
    )
    assert_error(
        await env.owner.post(f"{BASE}/{slack}/resend-verification"), 422, "CHANNEL_NOT_VERIFIABLE"
    )
    assert_error(
        await env.owner.post(f"{BASE}/test", json={"config": {"type": "email", "to": "a@b.co"}}),
        422,
        "CHANNEL_UNVERIFIED",
    )


async def test_test_endpoints(menv: MailEnv) -> None:
    env = menv.env
    slack = {"type": "slack", "webhook_url": "https://hooks.slack.com/services/T/B/C"}
    resp = await env.owner.post(f"{BASE}/test", json={"config": slack})
    assert resp.status_code == 200, resp.text
    assert resp.json()["ok"] is True
    assert (await env.owner.get(BASE)).json()["total"] == 0  # nothing persisted
    assert env.rec.seen[0].json()["text"].startswith("[TEST]")
    cid = await env.channel(slack, name="s")
    await env.owner.patch(f"{BASE}/{cid}", json={"enabled": False})
    resp = await env.owner.post(f"{BASE}/{cid}/test")  # a disabled channel too
    assert resp.status_code == 200, resp.text
    env.rec.answer((404, "no_service", {}))
    err = assert_error(await env.owner.post(f"{BASE}/{cid}/test"), 422, "CHANNEL_TEST_FAILED")
    assert err["details"] == {"status_code": 404}
    assert "/services/T/B/C" not in err["message"]
    pd = {"type": "pagerduty", "routing_key": "K" * 32}
    env.rec.answer(202)
    seen = len(env.rec.seen)
    assert (await env.owner.post(f"{BASE}/test", json={"config": pd})).status_code == 200
    actions = [s.json()["event_action"] for s in env.rec.seen[seen:]]
    assert actions == ["trigger", "resolve"]


async def test_engine_writes_the_outbox_in_its_transaction(
    owner: Persona, operator: Persona, app: Any, db_url: str
) -> None:
    from tests.control_plane.incidents.test_incidents import HISTORY_INTERVAL, Probe
    from tests.monitoring_helpers import make_agent

    resp = await owner.post(
        BASE,
        json={"name": "hook", "config": {"type": "webhook", "url": "https://hooks.example.com/"}},
    )
    cid = resp.json()["id"]
    agent = await make_agent(operator)
    resp = await owner.post(
        "/api/v1/targets",
        json={
            "name": "site",
            "check": {"type": "http", "url": "https://example.com/"},
            "interval": HISTORY_INTERVAL,
            "alert_confirmations": 2,
            "alerts": [{"channel_id": cid}],
        },
    )
    target = resp.json()
    probe = Probe(app, db_url, target)
    for _ in range(2):
        await probe.round({agent: "down"})
    (incident,) = (await owner.get(f"/api/v1/targets/{target['id']}/incidents")).json()["items"]
    items = (await owner.get(f"/api/v1/incidents/{incident['id']}/notifications")).json()["items"]
    assert [(n["kind"], n["state"], n["channel_id"]) for n in items] == [("open", "pending", cid)]
    for _ in range(2):
        await probe.round({agent: "up"})
    items = (await owner.get(f"/api/v1/incidents/{incident['id']}/notifications")).json()["items"]
    assert [n["kind"] for n in items] == ["open", "recovery"]


async def test_key_rotation_rewraps_channel_secrets(env: Env) -> None:
    import psycopg

    from control_plane.domain.notifications.codec import open_config
    from control_plane.security.rotation import rotate_keys
    from control_plane.security.sealing import Sealer
    from tests.stack import SEALING_KEYS

    cid = await env.channel(
        {"type": "webhook", "url": "https://h.example.com/x", "headers": {"X-K": "v1"}}
    )
    keys = {**SEALING_KEYS, "k2": b"\x02" * 32}
    sealer = Sealer(keys, "k2")
    async with await psycopg.AsyncConnection.connect(env.db_url, autocommit=True) as conn:
        report = await rotate_keys(conn, sealer)
    assert report.rewrapped >= 2 and not report.failures
    (row,) = await env.sql("SELECT id, org_id, config, secrets FROM channels WHERE id = %s", cid)
    assert all(v.startswith("v1:k2:") for v in row["secrets"].values())
    cfg: Any = open_config(sealer, row["org_id"], row["id"], row["config"], row["secrets"])
    assert cfg.url == "https://h.example.com/x" and cfg.headers == {"X-K": "v1"}
