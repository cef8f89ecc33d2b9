"""The delivery pipeline over the real database: outbox rows, claims, retries, dead letters,
maintenance holds, reminders, storms, the circuit breaker and the incident notifications API."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from tests.conftest import assert_error
from tests.control_plane.notifications.conftest import Env

SECRET = "whsec-CANARY-0123456789"


def attempts(n: dict[str, Any]) -> list[tuple[str, int | None]]:
    return [(a["outcome"], a["status_code"]) for a in n["attempt_log"]]


async def webhook(env: Env, **kw: Any) -> str:
    return await env.channel({"type": "webhook", "url": env.rec.url + "/hook", **kw})


async def test_open_and_recovery_signed_once(env: Env) -> None:
    cid = await webhook(env, secret=SECRET)
    tid = await env.target([cid])
    iid = await env.open_incident(tid)
    (n,) = await env.notifications(iid)
    assert (n["kind"], n["state"], n["channel_id"]) == ("open", "pending", cid)
    assert await env.deliver() == 1
    (req,) = env.rec.seen
    ts = req.headers["X-Vigil-Timestamp"]
    mac = hmac.new(SECRET.encode(), f"{ts}.".encode() + req.body, hashlib.sha256).hexdigest()
    assert req.headers["X-Vigil-Signature"] == f"sha256={mac}"
    assert req.json()["event"] == "monitor.down" and req.json()["incident"]["id"] == iid
    await env.close_incident(iid)
    assert await env.deliver() == 1
    assert await env.deliver() == 0
    assert [s.json()["event"] for s in env.rec.seen] == ["monitor.down", "monitor.up"]
    opened, recovered = await env.notifications(iid)
    assert (opened["kind"], opened["state"]) == ("open", "delivered")
    assert (recovered["kind"], recovered["state"]) == ("recovery", "delivered")
    assert attempts(opened) == [("delivered", 200)]


async def test_no_recovery_when_notify_recovery_false_and_disabled_channel_skipped(
    env: Env,
) -> None:
    cid = await webhook(env)
    tid = await env.target([cid], notify_recovery=False)
    iid = await env.open_incident(tid)
    await env.deliver()
    await env.close_incident(iid)
    await env.deliver()
    assert len(env.rec.seen) == 1
    off = await env.channel({"type": "webhook", "url": env.rec.url}, name="off")
    await env.owner.patch(f"/api/v1/notification-channels/{off}", json={"enabled": False})
    tid2 = await env.target([off], name="t2")
    iid2 = await env.open_incident(tid2)
    assert await env.notifications(iid2) == []


async def test_500_then_200_retried_and_delivered_once(env: Env) -> None:
    env.rec.answer(500, 200)
    iid = await env.open_incident(await env.target([await webhook(env)]))
    await env.deliver()
    (n,) = await env.notifications(iid)
    assert n["state"] == "pending" and attempts(n) == [("retry", 500)]
    await env.deliver()
    (n,) = await env.notifications(iid)
    assert n["state"] == "delivered" and attempts(n) == [("retry", 500), ("delivered", 200)]
    assert await env.deliver() == 0 and len(env.rec.seen) == 2


async def test_429_retry_after_honoured(env: Env) -> None:
    env.rec.answer((429, "slow down", {"Retry-After": "30"}), 200)
    iid = await env.open_incident(await env.target([await webhook(env)]))
    await env.deliver()
    (row,) = await env.sql(
        "SELECT due_at - now() > interval '25 seconds' AS later FROM notifications"
    )
    assert row["later"]
    assert await env.deliver() == 0  # not due yet
    await env.sql("UPDATE notifications SET due_at = now()")  # the 30 s have passed
    await env.deliver()
    (n,) = await env.notifications(iid)
    assert attempts(n) == [("retry", 429), ("delivered", 200)]


async def test_401_dead_letter_at_once_then_retry(env: Env) -> None:
    env.rec.answer(401, 200)
    iid = await env.open_incident(await env.target([await webhook(env)]))
    await env.deliver()
    (n,) = await env.notifications(iid)
    assert n["state"] == "dead" and attempts(n) == [("dead", 401)]
    assert await env.deliver() == 0
    resp = await env.owner.post(f"/api/v1/incidents/{iid}/notifications/{n['id']}/retry")
    assert resp.status_code == 200, resp.text
    assert resp.json()["items"][0]["state"] == "pending"
    await env.deliver()
    (n,) = await env.notifications(iid)
    assert n["state"] == "delivered" and attempts(n) == [("dead", 401), ("delivered", 200)]
    again = await env.owner.post(f"/api/v1/incidents/{iid}/notifications/{n['id']}/retry")
    assert_error(again, 409, "NOTIFICATION_NOT_DEAD")


async def test_timeout_retried(env: Env) -> None:
    env.rec.delay = 3
    iid = await env.open_incident(await env.target([await webhook(env)]))
    await env.deliver()
    (n,) = await env.notifications(iid)
    assert n["state"] == "pending" and attempts(n) == [("retry", None)]
    assert n["attempt_log"][0]["error"] == "timeout"


async def test_attempt_cap_dead_letters(env: Env) -> None:
    env.rec.answer(503)
    iid = await env.open_incident(await env.target([await webhook(env)]))
    cap = env.res.settings.notify.max_attempts
    for _ in range(cap):
        await env.sql("UPDATE channels SET circuit_open_until = NULL")
        await env.deliver()
    (n,) = await env.notifications(iid)
    assert n["state"] == "dead"
    assert attempts(n) == [("retry", 503)] * (cap - 1) + [("dead", 503)]


async def test_expired_lease_of_a_killed_worker_is_claimed_again(env: Env) -> None:
    iid = await env.open_incident(await env.target([await webhook(env)]))
    # A worker claimed the row and died before sending: its lease is in place.
    await env.sql("UPDATE notifications SET lease_until = now() + interval '1 hour', attempts = 1")
    assert await env.deliver() == 0 and env.rec.seen == []
    await env.sql("UPDATE notifications SET lease_until = now() - interval '1 second'")
    assert await env.deliver() == 1
    (n,) = await env.notifications(iid)
    assert n["state"] == "delivered" and len(env.rec.seen) == 1


async def _window(env: Env, target_id: str) -> str:
    (row,) = await env.sql(
        "INSERT INTO maintenance_windows (id, org_id, title, starts_at, ends_at)"
        " VALUES (gen_random_uuid(), %s, 'db upgrade', now() - interval '1 minute',"
        " now() + interval '1 hour') RETURNING id",
        env.owner.org_id,
    )
    await env.sql(
        "INSERT INTO maintenance_targets (window_id, target_id) VALUES (%s, %s)",
        row["id"],
        target_id,
    )
    return str(row["id"])


async def test_maintenance_holds_then_sends_when_window_ends(env: Env) -> None:
    tid = await env.target([await webhook(env)])
    wid = await _window(env, tid)
    iid = await env.open_incident(tid)
    await env.sql("UPDATE incidents SET in_maintenance = true WHERE id = %s", iid)
    assert await env.deliver() == 0 and env.rec.seen == []
    (n,) = await env.notifications(iid)
    assert n["held"] and n["state"] == "pending"
    await env.sql("UPDATE maintenance_windows SET ends_at = now() WHERE id = %s", wid)
    assert await env.deliver() == 1
    assert env.rec.seen[0].json()["event"] == "monitor.down"


async def test_closed_during_maintenance_sends_nothing(env: Env) -> None:
    tid = await env.target([await webhook(env)])
    await _window(env, tid)
    iid = await env.open_incident(tid)
    await env.sql("UPDATE incidents SET in_maintenance = true WHERE id = %s", iid)
    await env.deliver()
    await env.close_incident(iid)
    await env.deliver()
    assert env.rec.seen == []
    assert [(n["kind"], n["state"]) for n in await env.notifications(iid)] == [
        ("open", "skipped"),
        ("recovery", "skipped"),
    ]


async def age_61_secs(env: Env) -> None:
    """As if 61 s had passed for the reminders: the incidents opened and the messages went out
    that much earlier."""
    await env.sql("UPDATE notifications SET delivered_at = delivered_at - interval '61 seconds'")
    await env.sql("UPDATE incidents SET opened_at = opened_at - interval '61 seconds'")


async def test_reminders_until_acknowledged(env: Env) -> None:
    tid = await env.target([await webhook(env)], renotify_interval_secs=60)
    iid = await env.open_incident(tid)
    await env.deliver()
    assert await env.deliver() == 0  # not yet: the interval has not passed
    await age_61_secs(env)
    assert await env.deliver() == 1
    assert [n["kind"] for n in await env.notifications(iid)] == ["open", "reminder"]
    resp = await env.owner.post(f"/api/v1/incidents/{iid}/acknowledge", json={"note": "on it"})
    assert resp.status_code == 200, resp.text
    await age_61_secs(env)
    assert await env.deliver() == 0
    assert len(env.rec.seen) == 2


async def test_a_manual_resolve_stops_reminders_too(env: Env) -> None:
    tid = await env.target([await webhook(env)], renotify_interval_secs=60)
    iid = await env.open_incident(tid)
    await env.deliver()
    resp = await env.owner.post(f"/api/v1/incidents/{iid}/resolve", json={})
    assert resp.status_code == 200, resp.text
    await age_61_secs(env)
    assert await env.deliver() == 0
    assert [n["kind"] for n in await env.notifications(iid)] == ["open"]


async def test_storm_grouped_on_chat_one_event_each_on_webhook(env: Env) -> None:
    slack = await env.channel(
        {"type": "slack", "webhook_url": "https://hooks.slack.com/services/T/B/C"}, name="slack"
    )
    hook = await webhook(env)
    incidents = [
        await env.open_incident(await env.target([slack, hook], name=f"site-{i}")) for i in range(7)
    ]
    await env.deliver()
    chat = [s for s in env.rec.seen if s.path.startswith("/services/")]
    hooks = [s for s in env.rec.seen if s.path == "/hook"]
    assert len(chat) == 1 and len(hooks) == 7
    assert chat[0].json()["text"].startswith("7 monitors down")
    for iid in incidents:
        assert all(n["state"] == "delivered" for n in await env.notifications(iid))


async def test_circuit_opens_and_test_send_refused(env: Env) -> None:
    env.rec.answer(500)
    cid = await webhook(env)
    for i in range(3):
        await env.open_incident(await env.target([cid], name=f"s{i}"))
    await env.deliver()
    resp = await env.owner.post(f"/api/v1/notification-channels/{cid}/test")
    assert_error(resp, 422, "CIRCUIT_OPEN")
    seen = len(env.rec.seen)
    assert await env.deliver() == 0 and len(env.rec.seen) == seen


async def test_canary_secret_never_read_back_or_recorded(env: Env, capfd: Any) -> None:
    env.rec.answer((500, f"echo {SECRET} and /hook/{SECRET}", {}))
    cid = await env.channel(
        {"type": "webhook", "url": f"{env.rec.url}/hook/{SECRET}", "secret": SECRET}
    )
    iid = await env.open_incident(await env.target([cid]))
    await env.deliver()
    reads = [
        (await env.owner.get(f"/api/v1/notification-channels/{cid}")).text,
        (await env.owner.get("/api/v1/notification-channels")).text,
        (await env.owner.get(f"/api/v1/incidents/{iid}/notifications")).text,
    ]
    for text in reads:
        assert SECRET not in text
    rows = await env.sql("SELECT error FROM notification_attempts")
    assert rows and all(SECRET not in (r["error"] or "") for r in rows)
    (n,) = await env.sql("SELECT last_error FROM notifications")
    assert SECRET not in (n["last_error"] or "")
    out, err = capfd.readouterr()
    assert SECRET not in out + err


async def test_incident_notification_routes_cross_org_404(env: Env) -> None:
    iid = await env.open_incident(await env.target([await webhook(env)]))
    (n,) = await env.notifications(iid)
    assert_error(
        await env.outsider.get(f"/api/v1/incidents/{iid}/notifications"), 404, "INCIDENT_NOT_FOUND"
    )
    assert_error(
        await env.outsider.post(f"/api/v1/incidents/{iid}/notifications/{n['id']}/retry"),
        404,
        "NOTIFICATION_NOT_FOUND",
    )
    assert_error(
        await env.owner.post(f"/api/v1/incidents/{iid}/notifications/nope/retry"),
        404,
        "NOTIFICATION_NOT_FOUND",
    )
    assert_error(
        await env.owner.get("/api/v1/incidents/nope/notifications"), 404, "INCIDENT_NOT_FOUND"
    )


async def test_storm_spread_over_runs_stays_grouped_and_recovery_grouped(env: Env) -> None:
    slack = await env.channel(
        {"type": "slack", "webhook_url": "https://hooks.slack.com/services/T/B/C"}, name="slack"
    )
    first = [await env.open_incident(await env.target([slack], name=f"a{i}")) for i in range(4)]
    await env.deliver()
    assert len(env.rec.seen) == 4  # no storm yet: one message each
    later = [await env.open_incident(await env.target([slack], name=f"b{i}")) for i in range(3)]
    await env.deliver()
    assert len(env.rec.seen) == 5  # 7 within the window: these 3 in one message
    assert env.rec.seen[-1].json()["text"].startswith("3 monitors down")
    for iid in first + later:
        await env.close_incident(iid)
    await env.deliver()
    assert len(env.rec.seen) == 6
    assert env.rec.seen[-1].json()["text"].startswith("7 monitors up")


async def test_metrics_count_deliveries_without_secrets(env: Env) -> None:
    from prometheus_client import REGISTRY, generate_latest

    await env.open_incident(await env.target([await webhook(env, secret=SECRET)]))
    await env.deliver()
    text = generate_latest(REGISTRY).decode()
    assert 'vigil_notify_deliveries_total{outcome="delivered",transport="webhook"}' in text
    for name in (
        "vigil_notify_attempt_duration_seconds",
        "vigil_notify_queue_depth",
        "vigil_notify_oldest_undelivered_seconds",
        "vigil_notify_dead_letters",
        "vigil_notify_open_circuits",
    ):
        assert name in text
    assert SECRET not in text and env.rec.url not in text
