"""Event webhooks through the outbox: a local receiver gets every event type once, signed, in
order per target, each with a stable id that a retry keeps; a receiver's 5xx is retried, a 4xx
dead-letters; the test endpoint sends a signed ``webhook.test``."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Any

import psycopg
from psycopg.rows import dict_row

from control_plane.domain.notifications import outbox
from control_plane.domain.webhooks import events
from tests.conftest import assert_error
from tests.control_plane.notifications.conftest import Env
from tests.control_plane.notifications.receiver import threaded_receiver

SECRET = "0123456789abcdef-secret"
ALL = list(events.EVENTS)


def verify(seen: Any) -> dict[str, Any]:
    ts = seen.headers["X-Vigil-Timestamp"]
    mac = hmac.new(SECRET.encode(), f"{ts}.".encode() + seen.body, hashlib.sha256).hexdigest()
    assert seen.headers["X-Vigil-Signature"] == f"sha256={mac}"
    body: dict[str, Any] = seen.json()
    assert seen.headers["X-Vigil-Event-Id"] == body["id"]
    return body


async def engine(env: Env, sql: str, target_id: str, *, close: str | None = None) -> str:
    """An incident opened (or closed) the way the engine does it: the row, the outbox and the
    events in one transaction (what ``engine._decide`` calls)."""
    async with await psycopg.AsyncConnection.connect(env.db_url, row_factory=dict_row) as conn:
        async with conn.transaction():
            if close is None:
                row = await (await conn.execute(sql, (target_id,))).fetchone()
                assert row is not None
                iid = row["id"]
                await outbox.incidents_opened(conn, [iid])
                await events.engine_opened(conn, iid)
            else:
                iid = uuid.UUID(close)
                await conn.execute(sql, (close,))
                await outbox.incidents_closed(conn, [iid])
                await events.engine_closed(conn, iid)
    return str(iid)


OPEN = (
    "INSERT INTO incidents (id, org_id, target_id, started_at, status, cause)"
    " SELECT gen_random_uuid(), org_id, id, now(), 'down', 'HTTP 503'"
    " FROM targets WHERE id = %s RETURNING id"
)
CLOSE = "UPDATE incidents SET ended_at = now(), closed_at = now() WHERE id = %s"


async def drain(env: Env) -> None:
    for _ in range(40):
        if not await env.deliver():
            return
    raise AssertionError("the outbox did not drain")


async def test_every_event_once_signed_in_order_per_target(env: Env) -> None:
    resp = await env.owner.post(
        "/api/v1/webhooks", json={"url": env.rec.url + "/events", "events": ALL, "secret": SECRET}
    )
    assert resp.status_code == 201, resp.text
    hook = resp.json()
    tid = await env.target([], name="api")
    other = await env.target([], name="db")
    assert (
        await env.owner.patch(f"/api/v1/targets/{tid}", json={"name": "api2"})
    ).status_code == 200
    iid = await engine(env, OPEN, tid)
    assert (
        await env.owner.post(f"/api/v1/incidents/{iid}/acknowledge", json={})
    ).status_code == 200
    resp = await env.owner.patch(f"/api/v1/incidents/{iid}", json={"public_title": "API down"})
    assert resp.status_code == 200, resp.text
    await engine(env, CLOSE, tid, close=iid)
    resp = await env.owner.post(
        "/api/v1/maintenance",
        json={
            "title": "db upgrade",
            "starts_at": "2099-01-01T00:00:00Z",
            "ends_at": "2099-01-01T01:00:00Z",
            "target_ids": [other],
        },
    )
    assert resp.status_code == 201, resp.text
    window = resp.json()["id"]
    # The window's time passes.
    await env.sql(
        "UPDATE maintenance_windows SET starts_at = now() - interval '2 minutes',"
        " ends_at = now() - interval '1 minute' WHERE id = %s",
        window,
    )
    assert (await env.owner.delete(f"/api/v1/targets/{tid}")).status_code == 204
    await drain(env)

    bodies = [verify(s) for s in env.rec.seen]
    assert all(s.path == "/events" for s in env.rec.seen)
    assert sorted(b["event"] for b in bodies) == sorted([*ALL, "monitor.created"])
    assert len({b["id"] for b in bodies}) == len(bodies)
    of_api = [b["event"] for b in bodies if (b.get("monitor") or {}).get("id") == tid]
    assert of_api == [
        "monitor.created",
        "monitor.updated",
        "monitor.down",
        "incident.opened",
        "incident.acknowledged",
        "incident.updated",
        "monitor.up",
        "incident.resolved",
        "monitor.deleted",
    ]
    of_window = [b["event"] for b in bodies if (b.get("maintenance") or {}).get("id") == window]
    assert of_window == ["maintenance.started", "maintenance.ended"]
    down = next(b for b in bodies if b["event"] == "monitor.down")
    assert down["monitor"]["status"] == "down" and down["incident"]["id"] == iid
    assert down["incident"]["error_message"] == "HTTP 503"
    up = next(b for b in bodies if b["event"] == "monitor.up")
    assert up["monitor"]["status"] == "up" and up["incident"]["ended_at"] is not None
    # Nothing is announced twice, and the deliveries are listed.
    assert await env.deliver() == 0
    listed = (await env.owner.get(f"/api/v1/webhooks/{hook['id']}/deliveries")).json()
    assert listed["total"] == len(bodies)
    assert {d["state"] for d in listed["items"]} == {"delivered"}


async def test_retry_keeps_the_event_id_and_4xx_dead_letters(env: Env) -> None:
    resp = await env.owner.post(
        "/api/v1/webhooks",
        json={"url": env.rec.url + "/e", "events": ["monitor.created"], "secret": SECRET},
    )
    hook = resp.json()
    env.rec.answer(503, 200)
    await env.target([], name="one")
    assert await env.deliver() == 1
    await env.sql("UPDATE notifications SET due_at = now() WHERE kind = 'event'")
    assert await env.deliver() == 1
    first, second = (verify(s) for s in env.rec.seen)
    assert first == second  # the same event, the same id, re-signed
    listed = (await env.owner.get(f"/api/v1/webhooks/{hook['id']}/deliveries")).json()
    (one,) = listed["items"]
    assert one["state"] == "delivered" and one["attempts"] == 2
    assert one["event_id"] == first["id"]

    env.rec.answer(410)
    await env.target([], name="two")
    assert await env.deliver() == 1
    listed = (await env.owner.get(f"/api/v1/webhooks/{hook['id']}/deliveries")).json()
    assert listed["items"][0]["state"] == "dead"
    assert "HTTP 410" in listed["items"][0]["last_error"]


async def test_disabled_subscription_gets_nothing_and_test_endpoint(env: Env) -> None:
    resp = await env.owner.post(
        "/api/v1/webhooks",
        json={"url": env.rec.url + "/t", "events": ["monitor.created"], "secret": SECRET},
    )
    hook = resp.json()
    await env.owner.patch(f"/api/v1/webhooks/{hook['id']}", json={"enabled": False})
    await env.target([], name="quiet")
    assert await env.deliver() == 0
    assert env.rec.seen == []
    # The test endpoint answers while the request waits: a receiver on its own thread.
    async with threaded_receiver() as rec:
        resp = await env.owner.patch(f"/api/v1/webhooks/{hook['id']}", json={"url": rec.url + "/t"})
        assert resp.status_code == 200, resp.text
        resp = await env.owner.post(f"/api/v1/webhooks/{hook['id']}/test")
        assert resp.status_code == 200, resp.text
        assert resp.json()["ok"] is True
        body = verify(rec.seen[-1])
        assert body["event"] == "webhook.test" and body["test"] is True
        rec.answer(500)
        resp = await env.owner.post(f"/api/v1/webhooks/{hook['id']}/test")
        assert_error(resp, 422, "WEBHOOK_TEST_FAILED")


async def test_bulk_operations_pause_regions_and_a_cancelled_window_send_their_events(
    env: Env,
) -> None:
    resp = await env.owner.post(
        "/api/v1/webhooks", json={"url": env.rec.url + "/b", "events": ALL, "secret": SECRET}
    )
    assert resp.status_code == 201, resp.text
    http = [
        {"name": f"b{i}", "check": {"type": "http", "url": f"https://b{i}.example.com/"}}
        for i in range(3)
    ]
    resp = await env.owner.post("/api/v1/targets/bulk", json={"targets": http})
    assert resp.status_code == 201, resp.text
    ids = sorted(t["id"] for t in resp.json()["items"])
    action = {"ids": ids[:2], "action": {"type": "tag_add", "tags": ["prod"]}}
    resp = await env.owner.post("/api/v1/targets/bulk-action", json=action)
    assert resp.status_code == 200, resp.text
    assert (await env.owner.post(f"/api/v1/targets/{ids[2]}/pause")).status_code == 200
    resp = await env.owner.put(f"/api/v1/targets/{ids[2]}/regions", json={"regions": ["default"]})
    assert resp.status_code == 200, resp.text
    # A window that has begun, cancelled: it ends now for subscribers (and once only).
    resp = await env.owner.post(
        "/api/v1/maintenance",
        json={
            "title": "cut short",
            "starts_at": "2099-01-01T00:00:00Z",
            "ends_at": "2099-01-01T01:00:00Z",
            "target_ids": [ids[0]],
        },
    )
    window = resp.json()["id"]
    await env.sql(
        "UPDATE maintenance_windows SET starts_at = now() - interval '1 minute' WHERE id = %s",
        window,
    )
    # A window that never began is deleted silently.
    resp = await env.owner.post(
        "/api/v1/maintenance",
        json={
            "title": "later",
            "starts_at": "2099-01-01T00:00:00Z",
            "ends_at": "2099-01-02T00:00:00Z",
        },
    )
    later = resp.json()["id"]
    assert (await env.owner.delete(f"/api/v1/maintenance/{later}")).status_code == 204
    assert (await env.owner.delete(f"/api/v1/maintenance/{window}")).status_code == 204
    action = {"ids": ids, "action": {"type": "delete"}}
    resp = await env.owner.post("/api/v1/targets/bulk-action", json=action)
    assert resp.status_code == 200, resp.text
    await drain(env)

    bodies = [verify(s) for s in env.rec.seen]
    assert len({b["id"] for b in bodies}) == len(bodies)
    per_target = {
        tid: [b["event"] for b in bodies if (b.get("monitor") or {}).get("id") == tid]
        for tid in ids
    }
    assert per_target[ids[0]] == ["monitor.created", "monitor.updated", "monitor.deleted"]
    assert per_target[ids[1]] == ["monitor.created", "monitor.updated", "monitor.deleted"]
    assert per_target[ids[2]] == [
        "monitor.created",
        "monitor.updated",  # paused
        "monitor.updated",  # regions
        "monitor.deleted",
    ]
    tagged = next(
        b for b in bodies if b["event"] == "monitor.updated" and b["monitor"]["id"] == ids[0]
    )
    assert tagged["monitor"]["tags"] == ["prod"]
    paused = next(
        b for b in bodies if b["event"] == "monitor.updated" and b["monitor"]["id"] == ids[2]
    )
    assert paused["monitor"]["enabled"] is False
    of_windows = [
        (b["maintenance"]["id"], b["event"]) for b in bodies if b.get("maintenance") is not None
    ]
    assert of_windows == [(window, "maintenance.started"), (window, "maintenance.ended")]
