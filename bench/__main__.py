"""``python -m bench [--scenario NAME[,NAME…]]`` — what ``make bench`` runs.

Installs the missing tools, starts PostgreSQL, Redis, nginx (and blackbox_exporter twice,
default and ``GOMAXPROCS=1``, for the agent scenario; the slow server and the bench's DNS server
for the ``slow-dns`` variant) under ``.vigil/bench/``, runs each scenario against its own
database and processes, stops everything it started (on Ctrl-C and failures too) and writes
the report.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench.config import BenchConfig
from bench.peers import Blackbox, Nginx, SlowDns, ensure_tools
from bench.proc import Processes
from bench.report import Outcome, write_report
from bench.scenarios import (
    accounts,
    agent,
    detection,
    fleet,
    ingest,
    notify,
    public,
    reads,
    system,
    ws,
)
from bench.stack import Servers, Vigil

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = (
    "agent",
    "system",
    "ingest",
    "detection",
    "reads",
    "notify",
    "accounts",
    "public",
    "ws",
    "fleet",
)


class Peers:
    def __init__(self, folder: Path, cfg: BenchConfig) -> None:
        self.procs = Processes(folder / "logs")
        self.nginx = Nginx(folder / "nginx", self.procs)
        self.blackboxes = [
            Blackbox(folder / "blackbox", self.procs),
            Blackbox(folder / "blackbox-gmp1", self.procs, gomaxprocs=1, name="blackbox-gmp1"),
        ]
        self.slowdns = SlowDns(
            folder / "slowdns", self.procs, cfg.slow_lo_ms, cfg.slow_hi_ms, cfg.dns_ttl
        )

    def start_blackboxes(self) -> None:
        if not Blackbox.installed():
            print("bench: blackbox_exporter is not installed: no peer figures", flush=True)
            self.blackboxes = []
        for bb in self.blackboxes:
            bb.start()


def _scenario(
    name: str, vigil: Vigil, peers: Peers, cfg: BenchConfig
) -> Coroutine[Any, Any, Outcome]:
    runners: dict[str, Callable[[], Coroutine[Any, Any, Outcome]]] = {
        "agent": lambda: agent.run(vigil, peers.nginx, peers.blackboxes, cfg, peers.slowdns),
        "system": lambda: system.run(vigil, peers.nginx, peers.slowdns, cfg),
        "ingest": lambda: ingest.run(vigil, cfg),
        "detection": lambda: detection.run(vigil, peers.nginx, cfg),
        "reads": lambda: reads.run(vigil, peers.nginx, cfg),
        "notify": lambda: notify.run(vigil, peers.nginx, cfg),
        "accounts": lambda: accounts.run(vigil, cfg),
        "public": lambda: public.run(vigil, cfg),
        "ws": lambda: ws.run(vigil, cfg),
        "fleet": lambda: fleet.run(vigil, cfg),
    }
    return runners[name]()


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--scenario",
        default="",
        help=f"comma-separated, from {', '.join(SCENARIOS)} (default: all)",
    )
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.scenario.split(",") if s.strip()] or list(SCENARIOS)
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    # Explicit, so that a SIGINT a parent shell told us to ignore still stops the run cleanly.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_interrupt)

    cfg = BenchConfig()
    started = datetime.now(UTC)
    folder = ROOT / ".vigil" / "bench" / started.strftime("%Y%m%dT%H%M%SZ")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)  # PostgreSQL (as postgres) and nginx workers (as nobody) look inside
    outcomes: list[Outcome] = []
    servers = Servers(folder, fast=cfg.pg_fast, statements=cfg.pg_statements)
    peers = Peers(folder, cfg)
    interrupted = False
    try:
        ensure_tools()
        servers.start()
        peers.nginx.start()
        if "agent" in chosen:
            peers.start_blackboxes()
        if ("system" in chosen and cfg.system_variant == "slow-dns") or (
            "agent" in chosen and agent.SLOW_DNS in cfg.agent_variants
        ):
            peers.slowdns.start()
        for name in chosen:
            print(f"bench: scenario {name}", flush=True)
            t = time.monotonic()
            vigil = Vigil(servers, name, folder / name, Processes(folder / "logs" / name))
            try:
                outcome = asyncio.run(_scenario(name, vigil, peers, cfg))
            except Exception as exc:  # one failing scenario does not lose the others
                traceback.print_exc()
                outcome = Outcome(name, error=f"{type(exc).__name__}: {exc}")
            finally:
                vigil.close()
            outcome.seconds = time.monotonic() - t
            outcomes.append(outcome)
            print(f"bench: scenario {name} took {outcome.seconds:.0f} s", flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print("bench: interrupted; stopping everything", file=sys.stderr, flush=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the cleanup finish
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        peers.procs.stop_all()
        servers.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if outcomes:
        md, js = write_report(ROOT / "bench" / "results", started, outcomes)
        print(f"bench: report {md.relative_to(ROOT)} and {js.name}")
        print(md.read_text())
    failed = interrupted or any(o.error for o in outcomes)
    # BENCH_PG_EXPLAIN_MS: the slow statements' plans are in the server's log; kept.
    if failed or os.environ.get("BENCH_PG_EXPLAIN_MS"):
        print(f"bench: logs kept in {folder}", file=sys.stderr)
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
