"""Detection latency: from the moment a target starts failing to the moment its incident row is
open, for ``alert_confirmations`` 1 and 2, with the real agent (default settings), control plane
and worker.

``BENCH_RUNS`` targets per confirmation count, at a 10 s interval, are created through the API
against nginx's ``/flaky/<name>`` (500 while a flag file exists). Once each has an ``up`` result,
all flags are set at one instant (failure start). For each target: failure start → incident
``opened_at``, and the confirming result (the N-th ``down``) ``finished_at`` → ``opened_at``,
split into the agent's batching (finished → ``received_at``) and the evaluation (received →
opened). Notifications do not exist yet, so delivery is not measured.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import psycopg

from bench.config import BenchConfig
from bench.peers import Nginx
from bench.report import Outcome
from bench.stack import Vigil

INTERVAL = 10
WAIT_UP_S = 40.0
WAIT_OPEN_S = 60.0

UP_COUNT = """
SELECT count(DISTINCT target_id) FROM results WHERE target_id = ANY(%(ids)s) AND status = 'up'
"""
OPEN_COUNT = """
SELECT count(*) FROM incidents WHERE target_id = ANY(%(ids)s) AND ended_at IS NULL
"""
TIMELINE = """
SELECT i.opened_at,
       (SELECT array_agg(ARRAY[r.finished_at, r.received_at] ORDER BY r.scheduled_at)
        FROM results r
        WHERE r.target_id = i.target_id AND r.status = 'down') AS downs
FROM incidents i
WHERE i.target_id = %(id)s AND i.ended_at IS NULL
"""


async def _wait(db_url: str, query: str, ids: list[str], want: int, within: float) -> bool:
    deadline = time.monotonic() + within
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = await (await conn.execute(query, {"ids": ids})).fetchone()
            if row and row[0] >= want:
                return True
            await asyncio.sleep(0.1)
    return False


async def run(vigil: Vigil, nginx: Nginx, cfg: BenchConfig) -> Outcome:
    out = Outcome(
        "detection",
        params={"interval_s": INTERVAL, "targets per confirmation count": cfg.runs},
    )
    vigil.start_api()
    vigil.start_worker()
    _, api_token = await vigil.org()
    vigil.start_agent(await vigil.agent_token("default", "detection"), "agent")
    targets: dict[int, list[str]] = {1: [], 2: []}
    for confirmations, ids in targets.items():
        for i in range(cfg.runs):
            flag = f"c{confirmations}-{i}"
            nginx.fail(flag, False)
            made = await vigil.call(
                "POST",
                "/api/v1/targets",
                api_token,
                {
                    "name": f"detect-{flag}",
                    "check": {
                        "type": "http",
                        "url": nginx.url("http", f"/flaky/{flag}"),
                        "timeout": 2000,
                    },
                    "interval": INTERVAL,
                    "alert_confirmations": confirmations,
                },
            )
            ids.append(made["id"])
    every = targets[1] + targets[2]
    if not await _wait(vigil.db_url, UP_COUNT, every, len(every), WAIT_UP_S):
        raise RuntimeError(f"not every target had an 'up' result within {WAIT_UP_S:.0f} s")
    for confirmations in targets:
        for i in range(cfg.runs):
            nginx.fail(f"c{confirmations}-{i}")
    failing_since = datetime.now(UTC)
    try:
        opened = await _wait(vigil.db_url, OPEN_COUNT, every, len(every), WAIT_OPEN_S)
    finally:
        for confirmations in targets:
            for i in range(cfg.runs):
                nginx.fail(f"c{confirmations}-{i}", False)
    if not opened:
        out.notes.append(f"not every incident opened within {WAIT_OPEN_S:.0f} s")
    async with await psycopg.AsyncConnection.connect(vigil.db_url, autocommit=True) as conn:
        for confirmations, ids in targets.items():
            total, confirm, batching, evaluation = [], [], [], []
            for tid in ids:
                row = await (await conn.execute(TIMELINE, {"id": tid})).fetchone()
                if row is None or not row[1] or len(row[1]) < confirmations:
                    continue
                opened_at = row[0]
                finished, received = row[1][confirmations - 1]
                total.append((opened_at - failing_since).total_seconds())
                confirm.append((opened_at - finished).total_seconds())
                batching.append((received - finished).total_seconds())
                evaluation.append((opened_at - received).total_seconds())
            c = confirmations
            out.add(f"c={c}: failure start → incident open", total, "s")
            out.add(
                f"c={c}: confirming result finished → incident open",
                confirm,
                "s",
                target="< 2 s",
                meets=lambda x: x < 2.0,
            )
            out.add(f"c={c}: agent batching part (finished → received)", batching, "s")
            out.add(f"c={c}: evaluation part (received → open)", evaluation, "s")
    out.notes.append(
        "failure start → open includes waiting for the target's next slot(s): up to "
        f"{INTERVAL} s x confirmations by design. The agent sends results in batches of up to "
        "200 or after 1 s (its defaults)."
    )
    return out
