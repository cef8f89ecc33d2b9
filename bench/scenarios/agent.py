"""Agent throughput: the real ``vigil-agent`` (one process, fed by the real control plane:
lease → run → ingest) against loopback nginx, a fresh connection per check; in the same run the
ceiling (a bare aiohttp loop, ``bench.aiohttp_loop``, on the agent's event loop and GC settings)
and the peer (blackbox_exporter's ``/probe`` driven by ``wrk``, run both with its default
``GOMAXPROCS`` and with ``GOMAXPROCS=1``; the ratio is taken against the better of the two per
core, so a peer hobbled by its scheduler on a small machine cannot flatter us). HTTP, TCP and
HTTPS, each held to its goal.

Variant ``slow-dns`` (issue 18: concurrency limits and resolution must show up): every target
has its own name under the bench's DNS server (``bench.dnsserver``, TTL ``BENCH_DNS_TTL`` s,
shorter than the interval, so every check resolves) on a server that answers after
``BENCH_SLOW_LO_MS``-``BENCH_SLOW_HI_MS`` (``bench.slowserver``). The agent and the aiohttp loop
(which cycles through the same names, resolving each request) run with that DNS server as
their resolver (``SlowDns.wrap``). blackbox_exporter is not run for it: it resolves through the
machine's own resolver, which does not know the bench's names. No goal is set for it; its
figures say what a check costs when the network and DNS are in the way.

Each variant has its own region, agent and ``BENCH_AGENT_TARGETS`` targets at a 60 s interval.
No worker runs. Before each run every slot is made due, spread over the last ``BACKLOG_S``
seconds: the agent always has work when it is slower than what is offered (30,000 slots in
reach), and no slot is older than its interval by the run's end (the lease never hands out one
later than that; only the sweep would move it on). A run of a variant: start the agent, let it
warm up, measure a window (checks counted from the ``results`` table by ``finished_at``, CPU from
/proc), stop it; then the aiohttp loop and blackbox for the same window. Runs are interleaved
across variants and tools so machine noise hits them alike.

"Per core" is checks per CPU second of the process doing the checks.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime

import psycopg

from bench.config import BenchConfig
from bench.peers import Blackbox, Nginx, SlowDns, wrk
from bench.proc import cpu_between, sample, spread
from bench.report import Outcome
from bench.stack import Vigil
from shared.checks import CheckSpec, HttpCheck, TcpCheck

INTERVAL = 60
BACKLOG_S = 40
WARMUP_S = 3.0

COUNT_DONE = """
SELECT count(*) FILTER (WHERE status = 'up') AS up, count(*) AS total
FROM results
WHERE region_id = %(region)s AND finished_at >= %(t0)s AND finished_at < %(t1)s
"""


VARIANTS = ("http", "tcp", "https", SLOW_DNS := "slow-dns")


def specs(variant: str, nginx: Nginx, slowdns: SlowDns | None, n: int) -> list[CheckSpec]:
    """The ``n`` targets of a variant: one check of the local nginx repeated, or (slow-dns) a
    name of its own per target on the slow server."""
    if variant == SLOW_DNS:
        assert slowdns is not None
        return [HttpCheck(url=slowdns.url(i)) for i in range(n)]
    if variant == "tcp":
        return [TcpCheck(host="127.0.0.1", port=nginx.tcp_port)] * n
    return [HttpCheck(url=nginx.url(variant), verify_tls=False)] * n


def aiohttp_args(
    variant: str, nginx: Nginx, slowdns: SlowDns | None, n: int
) -> tuple[str, str, list[str]]:
    """What ``bench.aiohttp_loop`` is given besides concurrency and window: kind, target and
    the arguments after them (slow-dns: how many names to cycle through, as many as targets)."""
    if variant == SLOW_DNS:
        assert slowdns is not None
        return "names", slowdns.url(0).replace("//t0.", "//t{i}.", 1), [str(n)]
    if variant == "tcp":
        return variant, f"127.0.0.1:{nginx.tcp_port}", []
    return variant, nginx.url(variant), []


def check_variants(variants: tuple[str, ...]) -> None:
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(
            f"BENCH_AGENT_VARIANTS: unknown {', '.join(unknown)}; choose from {', '.join(VARIANTS)}"
        )


async def _count(db_url: str, region: str, t0: datetime, t1: datetime) -> tuple[int, int]:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute(COUNT_DONE, {"region": region, "t0": t0, "t1": t1})
        row = await cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


# The goals per variant (issue 18): agent / aiohttp per core, GC and loop matched, and
# agent / the better blackbox per core. TCP has no blackbox goal in the issue; it is held to at
# least the peer's own rate (1.0x) rather than to nothing.
CEILING_GOALS = {"http": 0.9, "tcp": 0.9, "https": 0.9}
PEER_GOALS = {"http": 2.0, "tcp": 1.0, "https": 1.0}


# Every slot due now, spread over the last BACKLOG_S seconds (see the module's docstring).
FRESH_SLOTS = """
UPDATE schedules s
SET next_due_at = now() - random() * make_interval(secs => %(backlog)s),
    leased_by = NULL, lease_expires_at = NULL
WHERE s.region_id = %(region)s
"""


async def _agent_run(
    vigil: Vigil, variant: str, token: str, cfg: BenchConfig, slowdns: SlowDns | None
) -> dict[str, float]:
    name = f"agent-{variant}"
    async with await psycopg.AsyncConnection.connect(vigil.db_url, autocommit=True) as conn:
        await conn.execute(FRESH_SLOTS, {"region": f"bench-{variant}", "backlog": BACKLOG_S})
    # Every bench target is one org's monitor of one local nginx: the per-host throttle would
    # hold all but two of them back, so the cap is lifted to the concurrency here.
    cap = str(cfg.concurrency)
    wrap = slowdns.wrap() if variant == SLOW_DNS and slowdns is not None else ()
    vigil.start_agent(
        token, name, ["--concurrency", cap, "--per-host-max-inflight", cap], wrap=wrap
    )
    try:
        await asyncio.sleep(WARMUP_S)
        vigil.procs.check()
        pids = vigil.pids("api", name)
        a, t0 = sample(pids), datetime.now(UTC)
        await asyncio.sleep(cfg.agent_window_s)
        b, t1 = sample(pids), datetime.now(UTC)
    finally:
        vigil.procs.stop(name)  # flushes the results it holds
    up, total = await _count(vigil.db_url, f"bench-{variant}", t0, t1)
    secs = (t1 - t0).total_seconds()
    cpu = cpu_between(a, b)
    return {
        "checks_per_s": up / secs,
        "not_up": total - up,
        "cpu_agent": cpu[name],
        "cpu_api": cpu["api"],
        "cpu_postgres": cpu.get("postgres", 0.0),
        "cpu_redis": cpu.get("redis", 0.0),
        "per_cpu_s": up / cpu[name] if cpu[name] else 0.0,
        "pipeline_cpu_ms_per_check": 1000 * sum(cpu.values()) / up if up else 0.0,
    }


async def _aiohttp_run(
    variant: str, nginx: Nginx, cfg: BenchConfig, slowdns: SlowDns | None, rate: float = 0.0
) -> dict[str, float]:
    """The bare loop flat out, or (``rate``) offered the agent's own checks per second."""
    kind, target, names = aiohttp_args(variant, nginx, slowdns, cfg.agent_targets)
    wrap = slowdns.wrap() if variant == SLOW_DNS and slowdns is not None else []
    proc = await asyncio.create_subprocess_exec(
        *wrap,
        sys.executable,
        "-m",
        "bench.aiohttp_loop",
        *(["--rate", f"{rate:.0f}"] if rate > 0 else []),
        kind,
        target,
        str(cfg.concurrency),
        str(cfg.agent_window_s),
        *names,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"aiohttp loop failed ({proc.returncode})")
    r = json.loads(out)
    return {
        "checks_per_s": r["done"] / r["seconds"],
        "not_up": r["failed"],
        "cpu": r["cpu_s"],
        "per_cpu_s": r["done"] / r["cpu_s"] if r["cpu_s"] else 0.0,
        "loop": r.get("loop", "?"),
        "gc": r.get("gc", "?"),
    }


async def _blackbox_run(
    variant: str, nginx: Nginx, blackbox: Blackbox, cfg: BenchConfig
) -> dict[str, float]:
    url = blackbox.probe_url(variant, nginx)
    pids = {"blackbox": blackbox.procs.pid(blackbox.name)}
    a = sample(pids)
    run = await asyncio.to_thread(wrk, url, cfg.concurrency, cfg.agent_window_s)
    b = sample(pids)
    cpu = cpu_between(a, b)["blackbox"]
    return {
        "checks_per_s": run.requests / run.seconds,
        "not_up": run.errors,
        "cpu": cpu,
        "per_cpu_s": run.requests / cpu if cpu else 0.0,
    }


def peers_of(variant: str, blackboxes: list[Blackbox]) -> list[Blackbox]:
    """The blackbox runs a variant is compared with: none for slow-dns (see the docstring)."""
    return [] if variant == SLOW_DNS else blackboxes


def best_peer(runs: dict[str, dict[str, float]]) -> tuple[str, dict[str, float]] | None:
    """The blackbox run with the most checks per CPU-second (of one interleaved round)."""
    if not runs:
        return None
    return max(runs.items(), key=lambda kv: kv[1]["per_cpu_s"])


async def run(
    vigil: Vigil,
    nginx: Nginx,
    blackboxes: list[Blackbox],
    cfg: BenchConfig,
    slowdns: SlowDns | None = None,
) -> Outcome:
    check_variants(cfg.agent_variants)
    out = Outcome(
        "agent",
        params={
            "targets per variant": cfg.agent_targets,
            "interval_s": INTERVAL,
            "offered checks/s": f"{cfg.agent_targets / INTERVAL:.0f}, after a backlog of every "
            f"slot made due over the last {BACKLOG_S} s before each run",
            "window_s": cfg.agent_window_s,
            "concurrency (agent, aiohttp, wrk)": cfg.concurrency,
            "runs": cfg.runs,
        },
    )
    if SLOW_DNS in cfg.agent_variants and slowdns is not None:
        out.params["slow-dns"] = (
            f"{slowdns.lo_ms:g}-{slowdns.hi_ms:g} ms per answer, a name per target, "
            f"DNS TTL {slowdns.ttl} s"
        )
    vigil.start_api()
    org_id, _ = await vigil.org()
    tokens: dict[str, str] = {}
    for variant in cfg.agent_variants:
        region = f"bench-{variant}"
        tokens[variant] = await vigil.agent_token(region, f"bench-{variant}")
        await vigil.bulk_targets(
            org_id,
            specs(variant, nginx, slowdns, cfg.agent_targets),
            region=region,
            interval=INTERVAL,
        )
        for bb in peers_of(variant, blackboxes):
            if not bb.probe_succeeds(variant, nginx):
                out.notes.append(
                    f"blackbox ({bb.label})'s {variant} probe did not succeed: its figures are off"
                )
    if not blackboxes:
        msg = (
            "blackbox_exporter is not installed and could not be: NO peer figures in this run "
            "(agent / blackbox not measured)"
        )
        print(f"bench: {msg}", flush=True)
        out.notes.append(msg)
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        v: {"agent": [], "aiohttp": [], "aiohttp_at_rate": [], "blackbox": []}
        for v in cfg.agent_variants
    }
    peer_runs: dict[str, dict[str, list[dict[str, float]]]] = {
        v: {bb.label: [] for bb in peers_of(v, blackboxes)} for v in cfg.agent_variants
    }
    for i in range(cfg.runs):
        for variant in cfg.agent_variants:
            started = time.monotonic()
            r = runs[variant]
            r["agent"].append(await _agent_run(vigil, variant, tokens[variant], cfg, slowdns))
            r["aiohttp"].append(await _aiohttp_run(variant, nginx, cfg, slowdns))
            agent_rate = r["agent"][-1]["checks_per_s"]
            r["aiohttp_at_rate"].append(
                await _aiohttp_run(variant, nginx, cfg, slowdns, rate=agent_rate)
            )
            this_round: dict[str, dict[str, float]] = {}
            for bb in peers_of(variant, blackboxes):
                this_round[bb.label] = await _blackbox_run(variant, nginx, bb, cfg)
                peer_runs[variant][bb.label].append(this_round[bb.label])
            best = best_peer(this_round)
            if best is not None:
                r["blackbox"].append({**best[1], "which": best[0]})  # type: ignore[dict-item]
            tools = ("agent", "aiohttp", "blackbox") if best else ("agent", "aiohttp")
            print(
                f"bench: agent {variant} run {i + 1}/{cfg.runs}: "
                + ", ".join(
                    f"{tool} {r[tool][-1]['checks_per_s']:.0f}/s "
                    f"({r[tool][-1]['per_cpu_s']:.0f}/cpu-s)"
                    for tool in tools
                )
                + "".join(
                    f", blackbox {label} {x['per_cpu_s']:.0f}/cpu-s"
                    for label, x in this_round.items()
                )
                + f" [{time.monotonic() - started:.0f} s]",
                flush=True,
            )
    for variant, r in runs.items():
        _figures(out, variant, r, cfg)
        for label, rows in peer_runs[variant].items():
            out.add(
                f"{variant}: blackbox ({label}) probes per CPU-second",
                _col(rows, "per_cpu_s"),
                "probes/cpu-s",
            )
        if r["blackbox"]:
            picked = [str(x.get("which")) for x in r["blackbox"]]
            out.notes.append(
                f"{variant}: the better blackbox per core, by run: {', '.join(picked)}"
            )
    loops = {str(x.get("loop")) for rr in runs.values() for x in rr["aiohttp"]}
    gcs = {str(x.get("gc")) for rr in runs.values() for x in rr["aiohttp"]}
    out.notes.append(
        f"the bare aiohttp loop ran on {', '.join(sorted(loops))} with GC {', '.join(sorted(gcs))} "
        "(the agent's own: probe_agent.cli.run_loop and tune_gc)"
    )
    out.notes.append(
        "agent checks are those with status 'up' whose finished_at falls in the window; "
        "aiohttp and blackbox count completed 2xx checks/probes. Per core = checks per CPU "
        "second of the checking process (agent; aiohttp loop; blackbox_exporter, whose CPU "
        "includes its /probe HTTP server). blackbox_exporter runs twice per round, with its "
        "default GOMAXPROCS and with GOMAXPROCS=1; agent / blackbox uses the better per core."
    )
    return out


def _col(rows: list[dict[str, float]], key: str) -> list[float]:
    return [row[key] for row in rows]


def _figures(out: Outcome, v: str, r: dict[str, list[dict[str, float]]], cfg: BenchConfig) -> None:
    agent, ceiling, peer = r["agent"], r["aiohttp"], r["blackbox"]
    at_rate = r.get("aiohttp_at_rate", [])
    offered = cfg.agent_targets / INTERVAL
    out.add(
        f"{v}: agent checks/s (offered ≥ {offered:.0f}/s)", _col(agent, "checks_per_s"), "checks/s"
    )
    out.add(f"{v}: agent checks per CPU-second", _col(agent, "per_cpu_s"), "checks/cpu-s")
    out.add(
        f"{v}: agent CPU per check",
        [1000 / x if x else 0.0 for x in _col(agent, "per_cpu_s")],
        "ms",
    )
    out.add(
        f"{v}: whole pipeline CPU per check (agent+api+postgres+redis)",
        _col(agent, "pipeline_cpu_ms_per_check"),
        "ms",
    )
    out.add(f"{v}: aiohttp loop checks/s", _col(ceiling, "checks_per_s"), "checks/s")
    out.add(f"{v}: aiohttp loop checks per CPU-second", _col(ceiling, "per_cpu_s"), "checks/cpu-s")
    out.add(f"{v}: blackbox (better per core) probes/s", _col(peer, "checks_per_s"), "probes/s")
    out.add(
        f"{v}: blackbox (better per core) probes per CPU-second",
        _col(peer, "per_cpu_s"),
        "probes/cpu-s",
    )
    # Ratios per run (interleaved runs share the machine's state), then their spread.
    vs_ceiling = [
        a["per_cpu_s"] / c["per_cpu_s"]
        for a, c in zip(agent, ceiling, strict=True)
        if c["per_cpu_s"]
    ]
    vs_peer = (
        [
            a["per_cpu_s"] / p["per_cpu_s"]
            for a, p in zip(agent, peer, strict=True)
            if p["per_cpu_s"]
        ]
        if peer
        else []
    )
    ceiling_goal = CEILING_GOALS.get(v)
    out.add(
        f"{v}: agent / aiohttp per core (GC and loop matched)",
        vs_ceiling,
        "x",
        target=f"≥ {ceiling_goal}x" if ceiling_goal else None,
        meets=(lambda x: x >= ceiling_goal) if ceiling_goal else None,
    )
    # The same ceiling offered the agent's own rate (``aiohttp_loop --rate``): a process's CPU
    # per check moves with its rate, so flat out against fed-by-the-control-plane can flatter
    # either side; this is the like-for-like figure, held to the same goal.
    if at_rate:
        out.add(
            f"{v}: aiohttp loop at the agent's rate, checks/s",
            _col(at_rate, "checks_per_s"),
            "checks/s",
        )
        out.add(
            f"{v}: aiohttp loop at the agent's rate, checks per CPU-second",
            _col(at_rate, "per_cpu_s"),
            "checks/cpu-s",
        )
        out.add(
            f"{v}: agent / aiohttp per core at the agent's rate",
            [
                a["per_cpu_s"] / c["per_cpu_s"]
                for a, c in zip(agent, at_rate, strict=True)
                if c["per_cpu_s"]
            ],
            "x",
            target=f"≥ {ceiling_goal}x" if ceiling_goal else None,
            meets=(lambda x: x >= ceiling_goal) if ceiling_goal else None,
        )
    peer_goal = PEER_GOALS.get(v)
    if peer:
        out.add(
            f"{v}: agent / blackbox per core (better GOMAXPROCS)",
            vs_peer,
            "x",
            target=f"≥ {peer_goal}x" if peer_goal else None,
            meets=(lambda x: x >= peer_goal) if peer_goal else None,
        )
    failures = sum(a["not_up"] for a in agent) + sum(c["not_up"] for c in ceiling + at_rate)
    failures += sum(p["not_up"] for p in peer)
    if failures:
        out.notes.append(f"{v}: {failures:.0f} checks did not come back up/2xx over all runs")
    for tool, rows in (("agent", agent), ("aiohttp", ceiling), ("blackbox", peer)):
        if not rows:
            continue
        key = "cpu_agent" if tool == "agent" else "cpu"
        out.cpu_s[f"{v}: {tool}"] = spread(_col(rows, key))
    out.cpu_s[f"{v}: api (during agent runs)"] = spread(_col(agent, "cpu_api"))
    out.cpu_s[f"{v}: postgres (during agent runs)"] = spread(_col(agent, "cpu_postgres"))
