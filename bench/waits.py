"""A diagnostic for the notify outage (``BENCH_NOTIFY_WAITS=1``): what PostgreSQL's backends
and the machine's cores are doing, second by second, so that the agents' slow round trips can
be put down to CPU (every backend running, both cores busy) or to waits (lock, I/O, LWLock).

Every ``every`` seconds it reads ``pg_stat_activity`` (active backends but its own, by
``wait_event_type:wait_event``, or ``CPU`` when a backend waits on nothing) and /proc/stat's
busy ticks. Per second since ``t0``: the machine's busy cores, the mean number of active
backends, and their most frequent states. Off by default: its own queries are a little load.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from typing import Any

import psycopg

from bench.proc import cores_busy, machine_ticks

SAMPLE = """
SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') AS what,
       left(regexp_replace(query, '\\s+', ' ', 'g'), 60) AS q
FROM pg_stat_activity
WHERE state = 'active' AND pid <> pg_backend_pid() AND backend_type = 'client backend'
"""


class WaitSampler:
    def __init__(self, db_url: str, every: float = 0.05) -> None:
        self.db_url = db_url
        self.every = every
        self.samples: list[tuple[float, list[tuple[str, str]]]] = []
        self.ticks: list[tuple[float, tuple[int, int]]] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.db_url, autocommit=True) as conn:
            while True:
                at = time.time()
                rows = await (await conn.execute(SAMPLE)).fetchall()
                self.samples.append((at, [(r[0], r[1]) for r in rows]))
                self.ticks.append((at, machine_ticks()))
                await asyncio.sleep(self.every)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def lines(self, t0: float, t1: float, label: str = "outage") -> list[str]:
        per: dict[int, list[list[tuple[str, str]]]] = {}
        for at, rows in self.samples:
            if t0 <= at < t1:
                per.setdefault(int(at - t0), []).append(rows)
        ticks: dict[int, list[tuple[int, int]]] = {}
        for at, tk in self.ticks:
            if t0 <= at < t1:
                ticks.setdefault(int(at - t0), []).append(tk)
        out = []
        for sec in sorted(per):
            snaps = per[sec]
            whats: Counter[str] = Counter()
            queries: Counter[str] = Counter()
            for rows in snaps:
                whats.update(w for w, _ in rows)
                queries.update(f"{w} {q}" for w, q in rows if w != "Client:ClientRead")
            got = ticks.get(sec, [])
            busy = cores_busy(got[0], got[-1]) if len(got) > 1 else float("nan")
            n = len(snaps)
            active = sum(len(r) for r in snaps) / n
            top = ", ".join(f"{w} {c / n:.1f}" for w, c in whats.most_common(4))
            waited = "; ".join(f"{q!r} {c / n:.1f}" for q, c in queries.most_common(3))
            out.append(
                f"{label} waits t+{sec:>2}s: cores busy {busy:.2f}, active backends {active:.1f}"
                f" ({top})" + (f"; in {waited}" if waited else "")
            )
        return out


def summary(sampler: WaitSampler, t0: float, t1: float) -> dict[str, Any]:
    whats: Counter[str] = Counter()
    n = 0
    for at, rows in sampler.samples:
        if t0 <= at < t1:
            n += 1
            whats.update(w for w, _ in rows)
    return {w: round(c / max(n, 1), 2) for w, c in whats.most_common(8)}
