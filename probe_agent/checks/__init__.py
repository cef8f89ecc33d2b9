"""Check runners, one small module per kind, registered under the kind's wire tag.

Adding a kind is a new module plus one line in ``build_runners``; a test fails when a kind of the
wire union (``shared.checks.CheckSpec``) has no runner here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import structlog

from probe_agent.checks.base import Attempt, CheckRunner
from probe_agent.checks.dns import DnsRunner
from probe_agent.checks.domain_expiry import IANA_RDAP_BOOTSTRAP, DomainExpiryRunner, RdapBootstrap
from probe_agent.checks.http import HttpRunner
from probe_agent.checks.tcp import TcpRunner
from probe_agent.checks.tls_cert import TlsCertRunner
from shared.checks import HeartbeatCheck, check_kind
from shared.protocol import CheckResult, Lease

log = structlog.get_logger("vigil.agent.checks")


def build_runners(*, rdap_bootstrap_url: str = IANA_RDAP_BOOTSTRAP) -> dict[str, CheckRunner[Any]]:
    return {
        "http": HttpRunner(),
        "tcp": TcpRunner(),
        "dns": DnsRunner(),
        "tls_cert": TlsCertRunner(),
        "domain_expiry": DomainExpiryRunner(RdapBootstrap(rdap_bootstrap_url)),
    }


RUNNERS: Mapping[str, CheckRunner[Any]] = build_runners()

# How long past its own timeout a runner may take before the agent gives up on it.
DEADLINE_SLACK_S = 5.0


async def run_lease(lease: Lease, runners: Mapping[str, CheckRunner[Any]] = RUNNERS) -> CheckResult:
    """Run a leased check. Always returns a result: a probe failure is status ``error``."""
    kind = check_kind(lease.check)
    runner = runners.get(kind)
    attempt = Attempt(lease)
    # A push kind (heartbeat) is received by the control plane and never leased to an agent.
    if runner is None or isinstance(lease.check, HeartbeatCheck):
        return attempt.probe_error(f"this agent cannot run '{kind}' checks")
    try:
        async with asyncio.timeout(lease.check.timeout / 1000 + DEADLINE_SLACK_S):
            return await runner.run(lease.check, lease)
    except TimeoutError:
        log.error("check_overran", kind=kind, target_id=lease.target_id)
        return attempt.probe_error(f"the {kind} runner overran the check's timeout")
    except Exception as exc:
        log.exception("check_crashed", kind=kind, target_id=lease.target_id)
        return attempt.probe_error(f"internal error in the {kind} runner: {type(exc).__name__}")
