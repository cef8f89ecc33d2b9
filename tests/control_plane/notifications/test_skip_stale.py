"""The delivery run's first step skips what must not be sent any more (outbox.sql
``skip_stale``): the pending rows of a channel disabled since they were queued, and pending
reminders of an incident no longer open. Everything else pending is left alone, however many
rows are pending (the statement gathers the ids to skip first, then updates those rows)."""

from __future__ import annotations

from tests.control_plane.notifications.conftest import Env
from tests.control_plane.notifications.test_pipeline import age_61_secs, webhook


async def _rows(env: Env, incident_id: str) -> list[tuple[str, str, str | None]]:
    rows = await env.sql(
        "SELECT n.kind, n.state, n.last_error, c.name FROM notifications n"
        " JOIN channels c ON c.id = n.channel_id WHERE n.incident_id = %s"
        " ORDER BY c.name, n.created_at",
        incident_id,
    )
    return [(r["name"] + ":" + r["kind"], r["state"], r["last_error"]) for r in rows]


async def test_disabled_channel_rows_skipped_the_rest_sent(env: Env) -> None:
    on = await env.channel({"type": "webhook", "url": env.rec.url + "/on"}, name="on")
    off = await env.channel({"type": "webhook", "url": env.rec.url + "/off"}, name="off")
    both = await env.open_incident(await env.target([on, off]))
    # Many rows pending for the enabled channel alongside.
    others = [await env.open_incident(await env.target([on], name=f"t{i}")) for i in range(30)]
    resp = await env.owner.patch(f"/api/v1/notification-channels/{off}", json={"enabled": False})
    assert resp.status_code == 200, resp.text
    assert await env.deliver() == 31
    assert {s.path for s in env.rec.seen} == {"/on"}
    assert await _rows(env, both) == [
        ("off:open", "skipped", "channel disabled"),
        ("on:open", "delivered", None),
    ]
    for iid in others:
        assert await _rows(env, iid) == [("on:open", "delivered", None)]


async def test_pending_reminder_of_acknowledged_incident_skipped(env: Env) -> None:
    cid = await webhook(env)
    tid = await env.target([cid], renotify_interval_secs=60)
    iid = await env.open_incident(tid)
    other = await env.target([cid], name="still", renotify_interval_secs=60)
    still = await env.open_incident(other)
    env.rec.answer(200, 200, 500)
    assert await env.deliver() == 2
    await age_61_secs(env)
    await env.deliver()  # both reminders are queued; the receiver fails them: still pending
    # The two delivery lanes may each have claimed the failing pair (2 or 4 failures), which
    # can open the channel's circuit (threshold 3 here) and hold the reminder still due; the
    # circuit is not what this test is about, so it starts closed for the next run.
    await env.sql("UPDATE channels SET consecutive_failures = 0, circuit_open_until = NULL")
    assert [r[:2] for r in await _rows(env, iid)] == [
        ("hook:open", "delivered"),
        ("hook:reminder", "pending"),
    ]
    resp = await env.owner.post(f"/api/v1/incidents/{iid}/acknowledge", json={"note": "on it"})
    assert resp.status_code == 200, resp.text
    env.rec.answer(200)
    await env.sql("UPDATE notifications SET due_at = now() WHERE state = 'pending'")
    await env.deliver()
    assert await _rows(env, iid) == [
        ("hook:open", "delivered", None),
        ("hook:reminder", "skipped", "incident acknowledged or ended"),
    ]
    # The incident still open gets its reminder.
    assert [r[:2] for r in await _rows(env, still)] == [
        ("hook:open", "delivered"),
        ("hook:reminder", "delivered"),
    ]
