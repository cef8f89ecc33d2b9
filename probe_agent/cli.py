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
import sys
from collections.abc import Sequence

import structlog

from probe_agent.agent import Agent, AgentStartupError
from probe_agent.config import AgentConfig, ConfigError, parse_config
from probe_agent.logs import configure_logging

log = structlog.get_logger("vigil.agent")

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


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = parse_config(argv, os.environ)
    except ConfigError as exc:
        print(f"vigil-agent: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_level)
    tune_gc()
    return asyncio.run(_run(config))


if __name__ == "__main__":
    sys.exit(main())
