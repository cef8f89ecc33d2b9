"""Storm grouping decided before the first send: a chat-style channel's opens and recoveries
wait for the hold (the oldest pending one's age), so a burst goes out as one grouped message
from its first send; webhooks are not held and get one event per incident. Real deliveries
to a local receiver; the hold's passing is simulated by ageing the rows, not by sleeping."""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
import pytest
from litestar.testing import AsyncTestClient

from control_plane.app import create_app
from control_plane.domain.notifications.jobs import Deliverer, Q
from control_plane.settings import Settings
from tests.conftest import Persona, make_org
from tests.control_plane.notifications.conftest import Env, notify_settings, started
from tests.control_plane.notifications.receiver import receiver

SLACK = {"type": "slack", "webhook_url": "https://hooks.slack.com/services/T/B/C"}


@pytest.fixture
async def held(settings: Settings, db_url: str) -> AsyncIterator[Env]:
    async with receiver() as rec:
        s = notify_settings(
            settings,
            rec.url,
            chat_hold_secs=60.0,
            storm_followup_secs=120.0,
            storm_window_secs=600.0,
        )
        async with started(s, db_url, rec) as env:
            yield env


async def age(env: Env, channel_id: str, secs: int) -> None:
    """As if ``secs`` had passed for the channel's rows (the hold counts from created_at)."""
    await env.sql(
        "UPDATE notifications SET created_at = created_at - make_interval(secs => %s),"
        " delivered_at = delivered_at - make_interval(secs => %s) WHERE channel_id = %s",
        secs,
        secs,
        channel_id,
    )


def chat(env: Env) -> list[str]:
    return [s.json()["text"] for s in env.rec.seen if s.path.startswith("/services/")]


def hooks(env: Env) -> list[dict[str, object]]:
    return [s.json() for s in env.rec.seen if s.path == "/hook"]


async def test_burst_is_one_grouped_message_from_the_first_send(held: Env) -> None:
    env = held
    slack = await env.channel(SLACK, name="slack")
    hook = await env.channel({"type": "webhook", "url": env.rec.url + "/hook"}, name="hook")
    incidents = []
    for i in range(7):
        # The cron runs between the opens of a burst: nothing goes to the chat yet.
        incidents.append(await env.open_incident(await env.target([slack, hook], name=f"s{i}")))
        await env.deliver()
    assert chat(env) == []
    assert len(hooks(env)) == 7  # webhooks are not held: one event each, at once
    await age(env, slack, 61)
    await env.deliver()
    (msg,) = chat(env)
    assert msg.startswith("7 monitors down:")
    assert all(f"s{i}" in msg for i in range(7))
    rows = await env.sql(
        "SELECT state, grouped FROM notifications WHERE channel_id = %s AND kind = 'open'", slack
    )
    assert rows == [{"state": "delivered", "grouped": True}] * 7

    # A follow-up during the storm waits the longer follow-up hold, then goes grouped too.
    late = [await env.open_incident(await env.target([slack], name=f"late{i}")) for i in range(2)]
    await age(env, slack, 61)
    await env.deliver()
    assert len(chat(env)) == 1  # 61 s is past the hold but not the follow-up hold
    await age(env, slack, 60)
    await env.deliver()
    assert len(chat(env)) == 2 and chat(env)[-1].startswith("2 monitors down:")

    # Recovery: grouped the same way; the webhook gets one monitor.up per incident.
    for iid in incidents + late:
        await env.close_incident(iid)
    await env.deliver()
    assert len(chat(env)) == 2
    assert [h["event"] for h in hooks(env)].count("monitor.up") == 7
    await age(env, slack, 61)
    await env.deliver()
    assert len(chat(env)) == 3 and chat(env)[-1].startswith("9 monitors up:")


async def test_a_lone_incident_goes_singly_after_the_hold(held: Env) -> None:
    env = held
    slack = await env.channel(SLACK, name="slack")
    iid = await env.open_incident(await env.target([slack], name="alone"))
    await env.deliver()
    assert chat(env) == []
    await age(env, slack, 61)
    await env.deliver()
    (msg,) = chat(env)
    assert msg.startswith("🔴 DOWN: alone") and iid in msg
    await env.close_incident(iid)
    await age(env, slack, 61)
    await env.deliver()
    assert chat(env)[-1].startswith("✅ UP: alone recovered")


async def test_a_chat_channel_is_claimed_by_one_claim_at_a_time(env: Env) -> None:
    # Another worker's claim is in progress (its transaction has not ended) and holds one of the
    # channel's rows: this run must not take the rest of the burst and send it as a second
    # message. The webhook's rows are not affected.
    slack = await env.channel(SLACK, name="slack")
    hook = await env.channel({"type": "webhook", "url": env.rec.url + "/hook"}, name="hook")
    for i in range(7):
        await env.open_incident(await env.target([slack, hook], name=f"s{i}"))
    d = Deliverer(env.res)
    try:
        async with await psycopg.AsyncConnection.connect(env.db_url) as other:
            s = env.res.settings.notify
            await other.execute(
                Q.claim,
                {
                    "limit": 1,
                    "lease_secs": s.lease_secs,
                    "chat_kinds": d._chat_kinds,
                    "hold_secs": s.chat_hold_secs,
                    "followup_secs": s.storm_followup_secs,
                    "storm_window": s.storm_window_secs,
                },
            )
            sent = await d.run_batch()
            await other.rollback()
        assert chat(env) == []
        assert sent == len(hooks(env)) == 7
        assert await d.run_batch() == 7  # the claim ended: the whole burst, in one message
        (msg,) = chat(env)
        assert msg.startswith("7 monitors down:")
    finally:
        await d.close()


async def test_a_burst_larger_than_a_batch_is_still_one_message(
    settings: Settings, db_url: str
) -> None:
    # The claim walks due rows a batch at a time; a chat channel's burst that the walk reaches
    # is claimed whole (it was cut at the batch: 7 opens in batches of 4 went out as "4 monitors
    # down" and "3 monitors down").
    async with receiver() as rec:
        s = notify_settings(
            settings, rec.url, batch=4, chat_hold_secs=60.0, storm_followup_secs=120.0
        )
        async with AsyncTestClient(app=create_app(s)) as client:
            org, token = await make_org(db_url, "Acme")
            owner = Persona(client, {"Authorization": f"Bearer {token}"}, org)
            env = Env(client.app, owner, owner, rec, db_url)
            slack = await env.channel(SLACK, name="slack")
            hook = await env.channel({"type": "webhook", "url": rec.url + "/hook"}, name="hook")
            for i in range(7):
                await env.open_incident(await env.target([hook, slack], name=f"s{i}"))
            await env.deliver()
            assert chat(env) == [] and len(hooks(env)) == 7
            await age(env, slack, 61)
            await env.deliver()
            (msg,) = chat(env)
            assert msg.startswith("7 monitors down:")


async def test_a_burst_that_keeps_growing_is_held_until_it_stops(held: Env) -> None:
    # Incidents of an outage open over longer than the hold: the hold counts from the newest
    # (it counted from the oldest: the first four went out one by one, the rest grouped later).
    env = held
    slack = await env.channel(SLACK, name="slack")
    for i in range(3):
        await env.open_incident(await env.target([slack], name=f"early{i}"))
    await age(env, slack, 61)  # past the hold, for these
    await env.open_incident(await env.target([slack], name="more"))
    await env.deliver()
    assert chat(env) == []  # the burst is still growing
    for i in range(3):
        await env.open_incident(await env.target([slack], name=f"late{i}"))
    await age(env, slack, 61)  # it stopped: the newest is past the hold
    await env.deliver()
    (msg,) = chat(env)
    assert msg.startswith("7 monitors down:")


async def test_a_burst_is_held_no_longer_than_the_followup_hold(held: Env) -> None:
    env = held
    slack = await env.channel(SLACK, name="slack")
    for i in range(2):
        await env.open_incident(await env.target([slack], name=f"old{i}"))
    await age(env, slack, 121)  # past the follow-up hold (120 s): however fresh the newest
    await env.open_incident(await env.target([slack], name="new"))
    await env.deliver()
    assert len(chat(env)) == 3  # three, not a storm: one by one
