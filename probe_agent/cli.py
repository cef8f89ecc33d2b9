"""``vigil-agent``: run a probe agent against a control plane.

vigil-agent --control-plane https://vigil.example.com --token sm_agent_…

Exit codes: 0 stopped by SIGTERM/SIGINT, 1 the token was refused or the agent failed,
2 bad configuration.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence

import structlog

from probe_agent.agent import Agent, AgentStartupError
from probe_agent.config import AgentConfig, ConfigError, parse_config
from probe_agent.logs import configure_logging

log = structlog.get_logger("vigil.agent")


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
    return asyncio.run(_run(config))


if __name__ == "__main__":
    sys.exit(main())
