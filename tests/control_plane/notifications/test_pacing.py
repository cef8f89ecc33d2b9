"""The delivery rate (``notifications/pacing.py``, ``VIGIL_NOTIFY_RATE_PER_SEC``): sends start
at most ``rate`` per second, in the order they were made; paced, the pipeline still delivers
every row once and keeps each channel's order."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from control_plane.domain.notifications.pacing import Pacer
from control_plane.settings import Settings, SettingsError, settings_from_env
from tests.control_plane.notifications.conftest import Env, notify_settings, started
from tests.control_plane.notifications.receiver import receiver


class FakeTime:
    """A clock that moves only when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, secs: float) -> None:
        self.sleeps.append(secs)
        self.now += secs
        await asyncio.sleep(0)


async def test_starts_are_spaced_by_the_rate_in_the_order_asked() -> None:
    t = FakeTime()
    pacer = Pacer(20.0, t.clock, t.sleep)
    starts: list[tuple[int, float]] = []

    async def send(i: int) -> None:
        await pacer.wait()
        starts.append((i, t.now))

    await asyncio.gather(*(send(i) for i in range(50)))
    assert [i for i, _ in starts] == list(range(50))  # first come, first served
    times = [at for _, at in starts]
    assert times[0] == 100.0  # the first goes at once
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) == pytest.approx(0.05)
    # The bound itself: no window of one second holds more than rate + 1 starts.
    for a in times:
        assert sum(1 for b in times if a <= b < a + 1.0) <= 21


async def test_an_idle_pacer_lets_the_next_send_go_at_once_without_a_burst() -> None:
    t = FakeTime()
    pacer = Pacer(10.0, t.clock, t.sleep)
    await pacer.wait()
    t.now += 5.0  # idle: the slots it did not use are not saved up
    await pacer.wait()
    assert t.sleeps == []
    await pacer.wait()
    assert t.sleeps == [pytest.approx(0.1)]


async def test_rate_zero_is_unpaced() -> None:
    t = FakeTime()
    pacer = Pacer(0.0, t.clock, t.sleep)
    await asyncio.gather(*(pacer.wait() for _ in range(100)))
    assert t.sleeps == []
    with pytest.raises(ValueError):
        Pacer(-1.0)


def test_the_rate_is_a_deployment_setting() -> None:
    env = {
        "VIGIL_DATABASE_URL": "postgresql://x/y",
        "VIGIL_REDIS_URL": "redis://x",
        "VIGIL_SECRET_KEYS": "k1:" + "A" * 43 + "=",
        "VIGIL_TOKEN_KEY": "A" * 43 + "=",
    }
    assert settings_from_env(env).notify.rate_per_sec == 1000.0
    assert settings_from_env({**env, "VIGIL_NOTIFY_RATE_PER_SEC": "0"}).notify.rate_per_sec == 0
    got = settings_from_env({**env, "VIGIL_NOTIFY_RATE_PER_SEC": "350.5"})
    assert got.notify.rate_per_sec == 350.5
    for bad in ("-1", "fast", "nan"):
        with pytest.raises(SettingsError, match="VIGIL_NOTIFY_RATE_PER_SEC"):
            settings_from_env({**env, "VIGIL_NOTIFY_RATE_PER_SEC": bad})


async def test_a_paced_run_delivers_every_row_once_in_order_within_the_rate(
    settings: Settings, db_url: str
) -> None:
    rate = 20.0
    async with receiver() as rec:
        s = notify_settings(settings, rec.url, rate_per_sec=rate)
        async with started(s, db_url, rec) as env:
            await _paced_run(env, rate)


async def _paced_run(env: Env, rate: float) -> None:
    hook = await env.channel({"type": "webhook", "url": env.rec.url + "/hook"})
    chat = await env.channel(
        {"type": "slack", "webhook_url": "https://hooks.slack.com/services/T/B/C"}, name="chat"
    )
    incidents = []
    for i in range(8):
        tid = await env.target([hook], name=f"site-{i}")
        incidents.append(await env.open_incident(tid))
    lone = await env.open_incident(await env.target([chat], name="chatty"))
    assert await env.deliver() == 9
    hooks = [s for s in env.rec.seen if s.path == "/hook"]
    # Every webhook once: one per incident, none twice.
    assert sorted(s.json()["incident"]["id"] for s in hooks) == sorted(incidents)
    # The rate bound, seen by the receiver: 9 sends at 20/s start at least 8/20 s apart in all
    # (a lower bound on the span; a slow machine only makes it longer).
    arrivals = sorted(s.at for s in env.rec.seen)
    assert arrivals[-1] - arrivals[0] >= (len(arrivals) - 1) / rate - 0.02
    # The chat channel's open, then its recovery: the channel's order holds.
    await env.close_incident(lone)
    assert await env.deliver() == 1
    chat_msgs = [s for s in env.rec.seen if s.path != "/hook"]
    assert len(chat_msgs) == 2
    opened, recovered = await env.notifications(lone)
    assert (opened["kind"], opened["state"]) == ("open", "delivered")
    assert (recovered["kind"], recovered["state"]) == ("recovery", "delivered")
    assert opened["attempt_log"][0]["at"] < recovered["attempt_log"][0]["at"]
    dead = await env.sql("SELECT count(*) AS n FROM notifications WHERE state <> 'delivered'")
    assert dead == [{"n": 0}]
