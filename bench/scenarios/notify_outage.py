"""The 10,000-target mass outage (``bench/scenarios/notify.py`` runs it last).

``BENCH_NOTIFY_OUTAGE`` HTTP targets (60 s interval, ``alert_confirmations`` 1) against nginx's
``/flaky/mass``, each bound to the webhook channel and 100 of them to the Slack-style channel,
checked by the real agent. Once every one has been seen up, nginx fails them all and every slot
is made due at that instant (they all go down at once). Figures: outage → every webhook
received; each incident's open → its webhook (p99); the delivery rate; chat messages for the 100
chat-bound incidents; dead letters.

Alongside, a probe agent of the bench's own in a process of its own (``bench/latency_probe.py``;
its own region, 20 targets, an empty fleet otherwise) times ``/api/agent/lease`` and
``/api/agent/ingest`` round trips every ``BENCH_NOTIFY_PROBE_EVERY_S``: for
``BENCH_NOTIFY_QUIET_S`` before the outage (quiet; the steady 10,000-target load) and during it
(outage → every webhook received); p99 of each compared (goal: within 2x; refused below
``latency_probe.MIN_QUIET_SAMPLES`` quiet samples). CPU of each process (api, worker, agent,
probe, postgres, redis, the bench = the receiver) and the machine's busy cores are reported for
both windows, so that the agents' latency can be put down to whichever is busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

from bench import latency_probe, pgcpu, statements, waits
from bench.config import BenchConfig
from bench.peers import Nginx
from bench.proc import (
    children_map,
    cores_busy,
    cpu_between,
    machine_ticks,
    own_cpu_s,
    sample,
    tree_cpu_s,
)
from bench.report import Outcome
from bench.stack import Vigil
from shared.checks import HttpCheck

OUTAGE = int(os.environ.get("BENCH_NOTIFY_OUTAGE", "10000"))
CHAT_BOUND = 100
PROBE_TARGETS = 20
PROBE_WARMUP_S = 3.0
WAIT_UP_S = 240.0
WAIT_SENT_S = 180.0
PROBE_REGION = "notify-probe"
# A diagnostic: sample pg_stat_activity's waits and the machine's busy cores (bench/waits.py).
WAITS = os.environ.get("BENCH_NOTIFY_WAITS", "") == "1"

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
OPENED = """
SELECT i.id::text, i.opened_at FROM incidents i WHERE i.target_id = ANY(%(ids)s)
"""
# When each target's first failing result of the outage reached the control plane (ingest):
# outage → all failing results in is the agent's part, the rest up to every incident open is
# the evaluation's.
# Per second of the outage (since ``t0``): failing results received and incidents opened.
PER_SECOND = """
SELECT 'results' AS what, floor(extract(epoch FROM r.received_at) - %(t0)s)::int AS s, count(*)
FROM results r
WHERE r.target_id = ANY(%(ids)s) AND r.status <> 'up' AND r.received_at >= %(since)s
GROUP BY 2
UNION ALL
SELECT 'opened', floor(extract(epoch FROM i.opened_at) - %(t0)s)::int, count(*)
FROM incidents i WHERE i.target_id = ANY(%(ids)s) AND i.opened_at >= %(since)s
GROUP BY 2
"""
FAILED_IN = """
SELECT max(first_in) FROM (
    SELECT min(r.received_at) AS first_in FROM results r
    WHERE r.target_id = ANY(%(ids)s) AND r.status <> 'up' AND r.received_at >= %(since)s
    GROUP BY r.target_id
) x
"""


p99 = latency_probe.p99
# The timeline counts the probe's round trips slower than this per second (the goal's p99).
SLOW_S = 0.028


class Window:
    """CPU of each process, the bench's own (the receiver) and the machine's busy cores between
    ``start`` and ``stop``."""

    def __init__(self, pids: dict[str, int], db_url: str) -> None:
        self.pids = pids
        self.db_url = db_url

    def start(self) -> None:
        self.t0 = time.time()
        self.a, self.own_a, self.ticks_a = sample(self.pids), own_cpu_s(), machine_ticks()
        self.pg_a = pgcpu.sample(self.db_url)

    def stop(self) -> None:
        self.t1 = time.time()
        self.cpu = cpu_between(self.a, sample(self.pids))
        self.cpu["bench (receiver)"] = round(own_cpu_s() - self.own_a, 3)
        self.busy = cores_busy(self.ticks_a, machine_ticks())
        self.pg = pgcpu.between(self.pg_a, pgcpu.sample(self.db_url))

    def report(self, out: Outcome, name: str) -> None:
        secs = self.t1 - self.t0
        for proc, cpu_s in self.cpu.items():
            out.add(f"{name}: {proc} CPU (cores)", [cpu_s / secs if secs > 0 else 0.0], "cores")
        out.add(f"{name}: machine busy (every process)", [self.busy], "cores")
        out.notes.append(
            f"{name}: {secs:.1f} s; CPU s "
            + ", ".join(f"{p} {c:.1f}" for p, c in sorted(self.cpu.items(), key=lambda x: -x[1]))
        )
        out.notes.append(
            f"{name}: postgres backends' CPU s by whom they serve: "
            + ", ".join(f"{p} {c:.1f}" for p, c in sorted(self.pg.items(), key=lambda x: -x[1]))
        )


class CpuTicker:
    """CPU cores used in each second since ``start``: each process (api, worker, agent, nginx,
    the bench = the receiver), PostgreSQL's backends by whom they serve (``pg:api``,
    ``pg:worker``), the machine's busy cores (``busy``) and the share of the second some
    runnable task waited for a core (``psi``, /proc/pressure/cpu): which process was busy in
    the probe's slow seconds, and whether the cores were the bottleneck."""

    def __init__(self, pids: dict[str, int], db_url: str) -> None:
        self.pids = pids
        self.db_url = db_url
        self.per: dict[int, dict[str, float]] = {}
        self._task: asyncio.Task[None] | None = None

    def _read(self, conn: psycopg.Connection[Any]) -> tuple[dict[str, float], dict[int, Any]]:
        kids = children_map()
        out = {name: tree_cpu_s(pid, kids) for name, pid in self.pids.items()}
        out["bench"] = own_cpu_s()
        out["psi"] = _psi_s()
        ticks = machine_ticks()
        out["_busy"], out["_all"] = float(ticks[0]), float(ticks[1])
        return out, pgcpu.sample_on(conn)

    async def _run(self, t0: float) -> None:
        with psycopg.connect(self.db_url, autocommit=True, application_name="bench") as conn:
            last, last_pg = self._read(conn)
            second = 0
            while True:
                await asyncio.sleep(max(0.0, t0 + second + 1 - time.time()))
                now, now_pg = self._read(conn)
                d = {n: now[n] - last[n] for n in now if not n.startswith("_")}
                d["busy"] = cores_busy(
                    (int(last["_busy"]), int(last["_all"])), (int(now["_busy"]), int(now["_all"]))
                )
                for who, cpu_s in pgcpu.between(last_pg, now_pg).items():
                    if who in ("api", "worker"):
                        d[f"pg:{who}"] = cpu_s
                self.per[second] = d
                last, last_pg, second = now, now_pg, second + 1

    def start(self, t0: float) -> None:
        self._task = asyncio.create_task(self._run(t0))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _psi_s() -> float:
    """Seconds so far that some runnable task waited for a CPU (0 where PSI is absent)."""
    try:
        text = open("/proc/pressure/cpu").read()
    except OSError:
        return 0.0
    for part in text.split("\n")[0].split():
        if part.startswith("total="):
            return int(part[6:]) / 1e6
    return 0.0


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
    cfg: BenchConfig,
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
        samples_file = vigil.folder / f"probe-{uuid.uuid4().hex[:6]}.txt"
        vigil.procs.start(
            "probe",
            [
                sys.executable,
                "-m",
                "bench.latency_probe",
                "--base-url",
                vigil.base_url,
                "--db-url",
                vigil.db_url,
                "--region",
                PROBE_REGION,
                "--targets",
                str(PROBE_TARGETS),
                "--every",
                str(cfg.notify_probe_every_s),
                "--out",
                str(samples_file),
            ],
            {**vigil.env, "VIGIL_PROBE_TOKEN": probe_token},
        )

        async def probe_warm() -> bool:
            vigil.procs.check()
            text = samples_file.read_text() if samples_file.exists() else ""
            return len(latency_probe.parse_samples(text)) >= 4

        # Its start-up, connections and first leases are not timed.
        if not await _until(probe_warm, 60, every=0.5):
            raise RuntimeError("the latency probe took no sample within 60 s")
        await asyncio.sleep(PROBE_WARMUP_S)
        pids = vigil.pids("api", "worker", "agent", "probe")
        quiet, storm = Window(pids, vigil.db_url), Window(pids, vigil.db_url)
        sampler = waits.WaitSampler(vigil.db_url) if WAITS else None
        if sampler:
            sampler.start()
        quiet.start()
        await asyncio.sleep(cfg.notify_quiet_s)
        quiet.stop()

        before_hooks, before_chat = rec.hooks, rec.chat
        nginx.fail("mass")
        storm.start()
        t0 = storm.t0
        if cfg.pg_statements:
            await statements.reset(vigil.db_url)
        ticker = CpuTicker({**pids, "nginx": nginx.procs.pid("nginx")}, vigil.db_url)
        ticker.start(t0)
        await conn.execute(GO_DOWN, {"ids": ids})

        async def all_delivered() -> bool:
            return delivered()

        def delivered() -> bool:
            return bool(rec.hooks - before_hooks >= OUTAGE)

        await _until(all_delivered, WAIT_SENT_S, every=0.5)
        storm.stop()
        await ticker.stop()
        if sampler:
            await sampler.stop()
        top = await statements.top(vigil.db_url) if cfg.pg_statements else []
        vigil.procs.stop("probe")
        samples = latency_probe.parse_samples(samples_file.read_text())
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
        quiet.report(out, "quiet window")
        storm.report(out, "outage window")
        counts = []
        for name in latency_probe.KINDS:
            q = latency_probe.window(samples, name, quiet.t0, quiet.t1)
            o = latency_probe.window(samples, name, storm.t0, storm.t1)
            counts.append(f"{name}: {len(q)} quiet, {len(o)} outage")
            if len(o) < latency_probe.MIN_QUIET_SAMPLES:
                out.notes.append(
                    f"probe {name}: the outage p99 is of {len(o)} samples (about their maximum)"
                )
            out.add(f"probe agent {name} round trip, quiet (p99)", [p99(q)], "s")
            out.add(f"probe agent {name} round trip, during the outage (p99)", [p99(o)], "s")
            try:
                ratio = latency_probe.ratio(q, o)
            except ValueError as exc:
                out.notes.append(f"probe {name}: no ratio ({exc})")
                ratio = float("nan")
            out.add(
                f"probe agent {name} p99: outage / quiet",
                [ratio],
                "x",
                target="≤ 2x",
                meets=lambda x: x <= 2,
            )
        failed = sum(1 for x in samples if not x.ok)
        out.notes.append(
            "probe samples (a process of its own): "
            + "; ".join(counts)
            + f"; {failed} refused or unanswered overall"
        )
        for st in top:
            out.notes.append(
                f"outage statement: {st.total_ms:,.0f} ms in {st.calls} calls"
                f" ({st.total_ms / max(st.calls, 1):.2f} ms each): {st.label}"
            )
        got_rows = await (
            await conn.execute(PER_SECOND, {"ids": ids, "since": since, "t0": t0})
        ).fetchall()
        out.notes.extend(
            timeline(t0, storm.t1, samples, list(rec.arrived.values()), got_rows, ticker.per)
        )
        if sampler:
            out.notes.append(
                f"backends (mean per sample), quiet: {waits.summary(sampler, quiet.t0, quiet.t1)};"
                f" outage: {waits.summary(sampler, storm.t0, storm.t1)}"
            )
            out.notes.extend(sampler.lines(t0, min(storm.t1, t0 + 12)))
        nginx.fail("mass", False)


def timeline(
    t0: float,
    t1: float,
    samples: list[latency_probe.ProbeSample],
    webhooks_at: list[float],
    db_rows: list[tuple[str, int, int]],
    cpu: dict[int, dict[str, float]] | None = None,
) -> list[str]:
    """One line per second of the outage: the probe's slowest lease and ingest of that second,
    and how many failing results came in, incidents opened and webhooks arrived in it; so that
    the probe's slow seconds can be put down to the phase that was running."""
    per: dict[int, dict[str, float]] = {}
    for s in samples:
        if t0 <= s.at < t1:
            sec = per.setdefault(int(s.at - t0), {})
            sec[s.kind] = max(sec.get(s.kind, 0.0), s.seconds)
            sec["n"] = sec.get("n", 0) + 1
            if s.seconds > SLOW_S:
                sec["slow"] = sec.get("slow", 0) + 1
    for at in webhooks_at:
        if t0 <= at < t1:
            sec = per.setdefault(int(at - t0), {})
            sec["webhooks"] = sec.get("webhooks", 0) + 1
    for what, second, n in db_rows:
        if second < t1 - t0:  # the steady results after the window are not the outage's
            per.setdefault(int(second), {})[what] = n
    lines = []
    for second in sorted(per):
        d = per[second]
        lines.append(
            f"outage t+{second:>2}s: lease max {1000 * d.get('lease', 0):.0f} ms,"
            f" ingest max {1000 * d.get('ingest', 0):.0f} ms,"
            f" {d.get('slow', 0):.0f}/{d.get('n', 0):.0f} > {1000 * SLOW_S:.0f} ms;"
            f" results {d.get('results', 0):.0f},"
            f" opened {d.get('opened', 0):.0f}, webhooks {d.get('webhooks', 0):.0f}"
            + "".join(f"; {n} {c:.2f}" for n, c in (cpu or {}).get(second, {}).items())
        )
    return lines
