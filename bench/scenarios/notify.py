"""Notification delivery, with the real agent, control plane and worker.

1. Latency: ``BENCH_NOTIFY_TARGETS`` targets (10 s interval, ``alert_confirmations`` 1) against
   nginx's ``/flaky/<name>``, each bound to one signed webhook channel whose receiver is a local
   aiohttp server. Once each is up, all fail at one instant. Per incident: the confirming result
   received by the control plane → the webhook received, and incident open → webhook received.
2. Throughput: ``BENCH_NOTIFY_MASS`` targets of their own (a region no agent serves), each
   bound to the webhook, 100 also to a Slack-style channel, get one incident each at once,
   written with the engine's statements (chunks of ``engine.CHUNK``, outbox rows in the same
   transaction): time until the receiver has every webhook, and how many chat messages the
   storm became.
3. The 10,000-target mass outage, end to end with agent-latency probes
   (``bench/scenarios/notify_outage.py``; ``BENCH_NOTIFY_OUTAGE=0`` skips it).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
from aiohttp import web

from bench.config import BenchConfig
from bench.honesty import percentile
from bench.peers import Nginx
from bench.proc import cpu_between, sample
from bench.report import Outcome
from bench.scenarios import notify_outage
from bench.stack import Vigil
from control_plane.core.ids import new_id
from control_plane.domain.incidents import engine
from control_plane.domain.notifications import outbox
from control_plane.domain.webhooks import events as webhook_events
from shared.checks import HttpCheck

INTERVAL = 10
WAIT_UP_S = 40.0
WAIT_SENT_S = 90.0
TARGETS = int(os.environ.get("BENCH_NOTIFY_TARGETS", "30"))
MASS = int(os.environ.get("BENCH_NOTIFY_MASS", "10000"))

UP_COUNT = """
SELECT count(DISTINCT target_id) FROM results WHERE target_id = ANY(%(ids)s) AND status = 'up'
"""
TIMELINE = """
SELECT i.id::text, i.opened_at,
       (SELECT min(r.received_at) FROM results r
        WHERE r.target_id = i.target_id AND r.status = 'down') AS confirmed
FROM incidents i WHERE i.target_id = ANY(%(ids)s)
"""
# Mass-phase targets live in a region no agent serves: never checked, only their incidents.
MASS_REGION = "notify-mass"
BIND = """
INSERT INTO target_alerts (target_id, channel_id, position)
SELECT t, %(channel)s::uuid, 0 FROM unnest(%(ids)s::uuid[]) AS t
"""


async def open_as_engine(
    conn: psycopg.AsyncConnection[Any], org_id: uuid.UUID, target_ids: list[uuid.UUID]
) -> int:
    """One open incident per target, written the way the incident engine writes them: a chunk
    (``engine.CHUNK``) per transaction, the incidents by its ``open_incidents`` statement, their
    notification rows by ``outbox.incidents_opened`` and their event rows by
    ``engine_opened_many``, in that transaction. Returns the incidents opened."""
    now = datetime.now(UTC).isoformat()
    opened = 0
    for i in range(0, len(target_ids), engine.CHUNK):
        rows = [
            {
                "id": str(new_id()),
                "org_id": str(org_id),
                "target_id": str(tid),
                "started_at": now,
                "status": "down",
                "cause": "HTTP 503",
                "regions": [MASS_REGION],
                "check_count": 1,
            }
            for tid in target_ids[i : i + engine.CHUNK]
        ]
        async with conn.transaction():
            got = await (
                await conn.execute(engine.Q.open_incidents, {"rows": json.dumps(rows)})
            ).fetchall()
            ids = [r[0] for r in got]
            await outbox.incidents_opened(conn, ids)
            await webhook_events.engine_opened_many(conn, ids)
        opened += len(ids)
    return opened


class Receiver:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.hooks = 0
        self.chat = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def hook(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.hooks += 1
        self.arrived.setdefault(body["incident"]["id"], time.time())
        return web.Response(text="ok")

    async def slack(self, request: web.Request) -> web.Response:
        await request.read()
        self.chat += 1
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.hook)
        app.router.add_post("/services/{tail:.*}", self.slack)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()


async def _until(cond: Any, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await cond():
            return True
        await asyncio.sleep(0.1)
    return False


async def run(vigil: Vigil, nginx: Nginx, cfg: BenchConfig) -> Outcome:
    out = Outcome(
        "notify",
        params={
            "interval_s": INTERVAL,
            "targets": TARGETS,
            "mass opens": MASS,
            "api processes": cfg.notify_api_workers,
            "worker nice": cfg.notify_worker_nice,
        },
    )
    rec = Receiver()
    await rec.start()
    try:
        vigil.env["VIGIL_NOTIFY_BASE_URLS"] = f"slack={rec.url}"
        vigil.start_api(cfg.notify_api_workers)
        vigil.start_worker(cfg.notify_worker_nice)
        org_id, token = await vigil.org()
        # Every target is the same nginx: lift the agent's per-host cap (default 2), as the
        # agent and system scenarios do, or the outage phase's checks come back throttled.
        cap = ["--concurrency", "100", "--per-host-max-inflight", "100"]
        vigil.start_agent(await vigil.agent_token("default", "notify"), "agent", cap)
        hook = await vigil.call(
            "POST",
            "/api/v1/notification-channels",
            token,
            {
                "name": "hook",
                "config": {"type": "webhook", "url": rec.url + "/hook", "secret": "s" * 32},
            },
        )
        chat = await vigil.call(
            "POST",
            "/api/v1/notification-channels",
            token,
            {
                "name": "chat",
                "config": {
                    "type": "slack",
                    "webhook_url": "https://hooks.slack.com/services/T/B/C",
                },
            },
        )
        ids: list[str] = []
        for i in range(TARGETS):
            nginx.fail(f"n{i}", False)
            made = await vigil.call(
                "POST",
                "/api/v1/targets",
                token,
                {
                    "name": f"notify-{i}",
                    "check": {
                        "type": "http",
                        "url": nginx.url("http", f"/flaky/n{i}"),
                        "timeout": 2000,
                    },
                    "interval": INTERVAL,
                    "alert_confirmations": 1,
                    "alerts": [{"channel_id": hook["id"]}],
                },
            )
            ids.append(made["id"])
        async with await psycopg.AsyncConnection.connect(vigil.db_url, autocommit=True) as conn:

            async def all_up() -> bool:
                row = await (await conn.execute(UP_COUNT, {"ids": ids})).fetchone()
                return bool(row and row[0] >= len(ids))

            if not await _until(all_up, WAIT_UP_S):
                raise RuntimeError("not every target was up in time")
            for i in range(TARGETS):
                nginx.fail(f"n{i}")

            async def all_sent() -> bool:
                return len(rec.arrived) >= len(ids)

            sent = await _until(all_sent, WAIT_SENT_S)
            for i in range(TARGETS):
                nginx.fail(f"n{i}", False)
            if not sent:
                out.notes.append(f"{len(rec.arrived)}/{len(ids)} webhooks within {WAIT_SENT_S} s")
            rows = await (await conn.execute(TIMELINE, {"ids": ids})).fetchall()
            confirmed, opened = [], []
            for iid, opened_at, first_down in rows:
                at = rec.arrived.get(iid)
                if at is None or first_down is None:
                    continue
                confirmed.append(at - first_down.timestamp())
                opened.append(at - opened_at.timestamp())
            out.add("failing result received → webhook received", confirmed, "s")
            # The goal is a p99: judged on the p99 of every sample, not on the median above.
            out.add(
                "failing result received → webhook received (p99)",
                [percentile(sorted(confirmed), 0.99)],
                "s",
                target="p99 ≤ 1.5 s",
                meets=lambda x: x <= 1.5,
            )
            out.add("incident open → webhook received", opened, "s")

            # Throughput: a mass outage's opens, one incident per target, as the engine writes
            # them (10,000 ended incidents of one target measured per-channel ordering on one
            # target, not a mass outage: 155/s).
            await vigil.region(MASS_REGION)
            mass_ids = await vigil.bulk_targets(
                org_id,
                [HttpCheck(url=nginx.url("http", "/"), timeout=2000)] * MASS,
                region=MASS_REGION,
                interval=3600,
                confirmations=1,
            )
            await conn.execute(BIND, {"ids": mass_ids, "channel": hook["id"]})
            await conn.execute(BIND, {"ids": mass_ids[:100], "channel": chat["id"]})
            before_hooks, before_chat = rec.hooks, rec.chat
            pids = vigil.pids("worker")
            cpu0 = sample(pids)
            t0 = time.monotonic()
            n_opened = await open_as_engine(conn, org_id, mass_ids)
            wrote = time.monotonic() - t0

            async def mass_done() -> bool:
                return rec.hooks - before_hooks >= MASS

            done = await _until(mass_done, 120)
            took = time.monotonic() - t0
            got = rec.hooks - before_hooks
            out.add(f"{MASS} engine opens written (chunks of {engine.CHUNK})", [wrote], "s")
            if n_opened != MASS:
                out.notes.append(f"mass phase: {n_opened}/{MASS} incidents opened")
            # CPU per delivery: what the machine's load (other work on these 2 cores) moves
            # least; the rate above is wall-clock and moves with it.
            cpu = cpu_between(cpu0, sample(pids))
            for name in ("worker", "postgres"):
                if name in cpu and got:
                    out.add(
                        f"{name} CPU per webhook delivered (mass phase)",
                        [cpu[name] / got * 1000],
                        "ms",
                    )

            async def chat_done() -> bool:
                row = await (
                    await conn.execute(
                        "SELECT count(*) FROM notifications"
                        " WHERE channel_id = %s::uuid AND state = 'pending'",
                        (chat["id"],),
                    )
                ).fetchone()
                return bool(row and row[0] == 0)

            await _until(chat_done, 60)
            out.add(
                f"{MASS} webhooks of {MASS} engine opens: deliveries per second",
                [got / took],
                "/s",
                target="≥ 350/s",
                meets=lambda x: x >= 350,
            )
            out.add(
                "chat messages for 100 opens at once",
                [rec.chat - before_chat],
                "msgs",
                target="≤ 5",
                meets=lambda x: x <= 5,
            )
            if not done:
                out.notes.append(f"only {got}/{MASS} webhooks within 120 s")
            dead = await (
                await conn.execute("SELECT count(*) FROM notifications WHERE state = 'dead'")
            ).fetchone()
            out.notes.append(f"dead letters: {dead[0] if dead else '?'}")
        out.notes.append(
            "The mass phase opens one incident per target (its own targets, in a region no agent"
            " serves) with the engine's statements; it measures the delivery job, not detection."
            " The outage phase below is end to end."
        )
        await notify_outage.run(vigil, nginx, cfg, out, rec, org_id, hook["id"], chat["id"])
    finally:
        await rec.stop()
    return out
