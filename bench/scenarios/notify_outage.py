"""The 10,000-target mass outage (``bench/scenarios/notify.py`` runs it last).

``BENCH_NOTIFY_OUTAGE`` HTTP targets (60 s interval, ``alert_confirmations`` 1) against nginx's
``/flaky/mass``, each bound to the webhook channel and 100 of them to the Slack-style channel,
checked by the real agent. Once every one has been seen up, nginx fails them all and every slot
is made due at that instant (they all go down at once). Figures: outage → every webhook
received; each incident's open → its webhook (p99); the delivery rate; chat messages for the 100
chat-bound incidents; dead letters.

Alongside, a probe agent of the bench's own (its own region, 20 targets, an empty fleet
otherwise) times ``/api/agent/lease`` and ``/api/agent/ingest`` round trips every 0.25 s: the
same for 10 s before the outage (quiet) and during it; p99 of each compared (goal: within 2x).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import psycopg

from bench.peers import Nginx
from bench.report import Outcome
from bench.scenarios.ingest import _bodies
from bench.stack import Vigil
from shared.checks import HttpCheck

OUTAGE = int(os.environ.get("BENCH_NOTIFY_OUTAGE", "10000"))
CHAT_BOUND = 100
PROBE_TARGETS = 20
QUIET_S = 10.0
WAIT_UP_S = 240.0
WAIT_SENT_S = 180.0
PROBE_REGION = "notify-probe"

UP_COUNT_RESULTS = """
SELECT count(DISTINCT target_id) FROM results WHERE target_id = ANY(%(ids)s) AND status = 'up'
"""
BIND = """
INSERT INTO target_alerts (target_id, channel_id, position)
SELECT t, %(channel)s::uuid, 0 FROM unnest(%(ids)s::uuid[]) AS t
"""
GO_DOWN = """
UPDATE schedules SET next_due_at = now(), leased_by = NULL, lease_expires_at = NULL
WHERE target_id = ANY(%(ids)s)
"""
PROBE_DUE = """
UPDATE schedules SET next_due_at = now(), leased_by = NULL, lease_expires_at = NULL
WHERE region_id = %(region)s
"""
OPENED = """
SELECT i.id::text, i.opened_at FROM incidents i WHERE i.target_id = ANY(%(ids)s)
"""
# When each target's first failing result of the outage reached the control plane (ingest):
# outage → all failing results in is the agent's part, the rest up to every incident open is
# the evaluation's.
FAILED_IN = """
SELECT max(first_in) FROM (
    SELECT min(r.received_at) AS first_in FROM results r
    WHERE r.target_id = ANY(%(ids)s) AND r.status <> 'up' AND r.received_at >= %(since)s
    GROUP BY r.target_id
) x
"""


def p99(xs: list[float]) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, round(0.99 * (len(s) - 1)))]


class Probe:
    """Times lease and ingest round trips of a quiet region while the system works."""

    def __init__(self, vigil: Vigil, token: str, db_url: str) -> None:
        self.vigil = vigil
        self.token = token
        self.db_url = db_url
        self.lease: list[float] = []
        self.ingest: list[float] = []
        self.errors = 0

    async def run(
        self, until: Callable[[], bool], within: float
    ) -> tuple[list[float], list[float]]:
        self.lease, self.ingest = [], []
        deadline = time.monotonic() + within
        headers = {"Authorization": f"Bearer {self.token}"}
        async with (
            aiohttp.ClientSession(headers=headers) as session,
            await psycopg.AsyncConnection.connect(self.db_url, autocommit=True) as conn,
        ):
            while not until() and time.monotonic() < deadline:
                await conn.execute(PROBE_DUE, {"region": PROBE_REGION})
                t = time.perf_counter()
                async with session.post(
                    self.vigil.base_url + "/api/agent/lease",
                    json={"max": PROBE_TARGETS, "wait_ms": 0},
                ) as resp:
                    got = await resp.json()
                    ok = resp.status == 200
                self.lease.append(time.perf_counter() - t)
                leases = got.get("leases", []) if ok else []
                if not ok or not leases:
                    self.errors += 1
                else:
                    (body,) = _bodies(leases)
                    t = time.perf_counter()
                    async with session.post(
                        self.vigil.base_url + "/api/agent/ingest",
                        data=body,
                        headers={"Content-Type": "application/json"},
                    ) as resp:
                        await resp.read()
                        if resp.status != 200:
                            self.errors += 1
                    self.ingest.append(time.perf_counter() - t)
                await asyncio.sleep(0.25)
        return self.lease, self.ingest


async def _until(cond: Callable[[], Awaitable[bool]], within: float, every: float = 0.5) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await cond():
            return True
        await asyncio.sleep(every)
    return False


async def run(
    vigil: Vigil,
    nginx: Nginx,
    out: Outcome,
    rec: Any,
    org_id: uuid.UUID,
    hook_id: str,
    chat_id: str,
) -> None:
    if OUTAGE <= 0:
        return
    out.params["outage targets"] = OUTAGE
    probe_token = await vigil.agent_token(PROBE_REGION, "probe")
    await vigil.bulk_targets(
        org_id,
        [HttpCheck(url=nginx.url("http", "/"), timeout=2000)] * PROBE_TARGETS,
        region=PROBE_REGION,
        interval=3600,
        confirmations=1,
    )
    nginx.fail("mass", False)
    ids = await vigil.bulk_targets(
        org_id,
        [HttpCheck(url=nginx.url("http", "/flaky/mass"), timeout=2000)] * OUTAGE,
        interval=60,
        confirmations=1,
    )
    async with await psycopg.AsyncConnection.connect(vigil.db_url, autocommit=True) as conn:
        await conn.execute(BIND, {"ids": ids, "channel": hook_id})
        await conn.execute(BIND, {"ids": ids[:CHAT_BOUND], "channel": chat_id})

        async def all_up() -> bool:
            row = await (await conn.execute(UP_COUNT_RESULTS, {"ids": ids})).fetchone()
            return bool(row and row[0] >= len(ids))

        t = time.monotonic()
        if not await _until(all_up, WAIT_UP_S, every=2.0):
            out.notes.append(f"outage: not every target was up within {WAIT_UP_S} s; skipped")
            return
        out.notes.append(f"outage: all {OUTAGE} targets seen up after {time.monotonic() - t:.0f} s")
        probe = Probe(vigil, probe_token, vigil.db_url)
        quiet_lease, quiet_ingest = await probe.run(lambda: False, QUIET_S)

        before_hooks, before_chat = rec.hooks, rec.chat
        nginx.fail("mass")
        t0 = time.time()
        await conn.execute(GO_DOWN, {"ids": ids})

        def delivered() -> bool:
            return bool(rec.hooks - before_hooks >= OUTAGE)

        storm_lease, storm_ingest = await probe.run(delivered, WAIT_SENT_S)
        got = rec.hooks - before_hooks
        rows = await (await conn.execute(OPENED, {"ids": ids})).fetchall()
        opened = {iid: at.timestamp() for iid, at in rows}
        arrived = [rec.arrived[i] for i in opened if i in rec.arrived]
        lat = [rec.arrived[i] - at for i, at in opened.items() if i in rec.arrived]
        first_open = min(opened.values()) if opened else float("nan")
        last_open = max(opened.values()) if opened else float("nan")
        t_all = max(arrived) - t0 if delivered() and arrived else float("nan")
        out.add(
            f"outage of {OUTAGE}: all go down → every webhook received",
            [t_all],
            "s",
            target="≤ 30 s",
            meets=lambda x: x <= 30,
        )
        out.add(f"outage of {OUTAGE}: incident open → webhook received (p99)", [p99(lat)], "s")
        out.add(
            f"outage of {OUTAGE}: incident open → webhook received (max)",
            [max(lat) if lat else float("nan")],
            "s",
        )
        out.add(f"outage of {OUTAGE}: first → last incident opened", [last_open - first_open], "s")
        since = datetime.fromtimestamp(t0, UTC)
        row = await (await conn.execute(FAILED_IN, {"ids": ids, "since": since})).fetchone()
        failed_in = row[0].timestamp() - t0 if row and row[0] else float("nan")
        out.add(f"outage of {OUTAGE}: go down → every failing result ingested", [failed_in], "s")
        out.add(
            f"outage of {OUTAGE}: go down → every incident open",
            [last_open - t0 if len(opened) >= OUTAGE else float("nan")],
            "s",
        )
        span = max(arrived) - min(arrived) if len(arrived) > 1 else float("nan")
        out.add(
            f"outage of {OUTAGE}: webhooks per second (first → last webhook)",
            [len(arrived) / span if span == span and span > 0 else 0.0],
            "/s",
            target="≥ 350/s",
            meets=lambda x: x >= 350,
        )

        # The chat storm: held, then grouped; wait until its rows are settled.
        async def chat_settled() -> bool:
            row = await (
                await conn.execute(
                    "SELECT count(*) FILTER (WHERE n.state = 'pending'), count(*)"
                    " FROM notifications n JOIN incidents i ON i.id = n.incident_id"
                    " WHERE n.channel_id = %s::uuid AND i.target_id = ANY(%s)",
                    (chat_id, ids[:CHAT_BOUND]),
                )
            ).fetchone()
            return bool(row and row[0] == 0 and row[1] >= CHAT_BOUND)

        await _until(chat_settled, 60)
        out.add(
            f"outage: chat messages for the {CHAT_BOUND} chat-bound incidents",
            [rec.chat - before_chat],
            "msgs",
            target="≤ 5",
            meets=lambda x: x <= 5,
        )
        dead = await (
            await conn.execute(
                "SELECT count(*) FROM notifications n JOIN incidents i ON i.id = n.incident_id"
                " WHERE n.state = 'dead' AND i.target_id = ANY(%s)",
                (ids,),
            )
        ).fetchone()
        out.notes.append(
            f"outage: {got}/{OUTAGE} webhooks; dead letters: {dead[0] if dead else '?'}"
        )
        for name, quiet, storm in (
            ("lease", quiet_lease, storm_lease),
            ("ingest", quiet_ingest, storm_ingest),
        ):
            out.add(f"probe agent {name} round trip, quiet (p99)", [p99(quiet)], "s")
            out.add(f"probe agent {name} round trip, during the outage (p99)", [p99(storm)], "s")
            ratio = p99(storm) / p99(quiet) if quiet and storm else float("nan")
            out.add(
                f"probe agent {name} p99: outage / quiet",
                [ratio],
                "x",
                target="≤ 2x",
                meets=lambda x: x <= 2,
            )
        out.notes.append(
            f"probe: {len(quiet_lease)} quiet and {len(storm_lease)} outage lease samples"
            f" ({probe.errors} without a lease or refused)"
        )
        nginx.fail("mass", False)
