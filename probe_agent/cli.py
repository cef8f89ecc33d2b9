"""``vigil-agent``: run a probe agent against a control plane.

vigil-agent --control-plane https://vigil.example.com --token sm_agent_…

Exit codes: 0 stopped by SIGTERM/SIGINT, 1 the token was refused or the agent failed,
2 bad configuration.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import structlog

from probe_agent.agent import Agent, AgentStartupError
from probe_agent.config import AgentConfig, ConfigError, parse_config
from probe_agent.logs import configure_logging

log = structlog.get_logger("vigil.agent")
T = TypeVar("T")

# A hundred checks in flight keep tens of thousands of short-lived objects alive at any moment:
# with Python's default first-generation threshold (700) most of them outlive a collection and
# get promoted, and the collector alone takes about a tenth of the agent's CPU. A larger first
# generation lets them die young; freezing what is alive at start (modules, classes) keeps it out
# of every later full collection.
GC_GEN0_THRESHOLD = 10_000


def tune_gc() -> None:
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


async def _run(config: AgentConfig) -> int:
    agent = Agent(config)
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, agent.request_stop)
    try:
        return await agent.run()
    except AgentStartupError as exc:
        log.error("agent_cannot_start", error=str(exc))
        return 1
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (Linux, macOS): the agent's hot path is
    event-loop work (sockets, timers, callbacks), which libuv does in C; else asyncio's own."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on the platforms it supports
        return None
    return uvloop.new_event_loop


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)


def child_argv(config: AgentConfig, argv: Sequence[str], index: int) -> list[str]:
    """The command line of agent process ``index`` of ``--processes N``: the same options, one
    process, its own spool (a spool is locked by one process) and its own metrics port."""
    extra = ["--processes", "1", "--spool-dir", str(config.spool_dir / f"process-{index}")]
    if config.metrics_port is not None:
        extra += ["--metrics-port", str(config.metrics_port + index)]
    return [sys.executable, "-m", "probe_agent.cli", *argv, *extra]


def supervise(commands: Sequence[Sequence[str]]) -> int:
    """Run one agent process per command until they stop. SIGTERM/SIGINT go on to every one
    (each releases its unstarted leases and flushes, as a single agent does); when one exits on
    its own (token refused, failure), the others are stopped too, so the service manager sees
    the failure and restarts the whole set. Returns the worst exit code."""
    procs = [subprocess.Popen(list(cmd)) for cmd in commands]

    def stop_all(signum: int = signal.SIGTERM, _frame: object = None) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop_all) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        log.info("agent_processes_started", processes=len(procs), pids=[p.pid for p in procs])
        codes: list[int] = []
        pending = list(procs)
        while pending:
            pid, status = os.wait()
            for proc in pending:
                if proc.pid == pid:
                    pending.remove(proc)
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    codes.append(proc.returncode)
                    if proc.returncode != 0 and pending:
                        log.error("agent_process_failed", pid=pid, exit_code=proc.returncode)
                        stop_all()
                    break
        # A child killed by a signal has a negative code: report it as a failure.
        return max((c if c >= 0 else 1) for c in codes)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        config = parse_config(args, os.environ)
    except ConfigError as exc:
        print(f"vigil-agent: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_level)
    if config.processes > 1:
        return supervise([child_argv(config, args, i) for i in range(config.processes)])
    tune_gc()
    return run_loop(_run(config))


if __name__ == "__main__":
    sys.exit(main())
