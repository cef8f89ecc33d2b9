"""Check runners, one small module per kind, registered under the kind's wire tag.

Adding a check kind takes three steps:

1. its module in ``shared/checks/`` (struct, validation, field codes, intervals, secrets: see
   ``shared.checks``);
2. its runner module here, ``probe_agent/checks/<kind>.py``, a class with
   ``async run(check, lease) -> CheckResult`` that never raises for a failing target;
3. one registry line on each side: ``<kind>.KIND`` in ``shared.checks.registry.KINDS``, and the
   runner in ``build_runners`` below.

A push kind (heartbeat) has no runner: the control plane receives it and never leases it.
``tests/probe_agent/test_check_registry.py`` fails when a registered kind lacks any part.
Modules that are not runners: ``base`` (the runner interface, results), ``stream`` (what tcp and
tls_cert share), ``http_session`` and ``http_verdict`` (the http runner's halves),
``assertions`` and ``expiry``.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from probe_agent.checks.base import Attempt, CheckRunner
from probe_agent.checks.dns import DnsRunner
from probe_agent.checks.domain_expiry import IANA_RDAP_BOOTSTRAP, DomainExpiryRunner, RdapBootstrap
from probe_agent.checks.http import HttpRunner
from probe_agent.checks.icmp import IcmpRunner
from probe_agent.checks.tcp import TcpRunner
from probe_agent.checks.tls_cert import TlsCertRunner
from probe_agent.deadlines import deadline
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
        "icmp": IcmpRunner(),
    }


RUNNERS: Mapping[str, CheckRunner[Any]] = build_runners()

# How long past its own timeout a runner may take before the agent gives up on it. A runner
# whose class says ``bounded = True`` puts every await of a check under a deadline of the
# check's timeout itself, and is not wrapped in this second one.
DEADLINE_SLACK_S = 5.0


async def run_lease(
    lease: Lease, runners: Mapping[str, CheckRunner[Any]] = RUNNERS, kind: str | None = None
) -> CheckResult:
    """Run a leased check. Always returns a result: a probe failure is status ``error``.

    ``kind`` is the check's kind when the caller already knows it.
    """
    if kind is None:
        kind = check_kind(lease.check)
    runner = runners.get(kind)
    # A push kind (heartbeat) is received by the control plane and never leased to an agent.
    if runner is None or isinstance(lease.check, HeartbeatCheck):
        return Attempt(lease).probe_error(f"this agent cannot run '{kind}' checks")
    started = time.time()  # the start of a failed run's result; cheaper than a datetime
    try:
        if getattr(runner, "bounded", False):
            # The runner holds every await of its check under its own deadline (the check's
            # timeout): a second one around it would only cost a timer entry per check.
            return await runner.run(lease.check, lease)
        with deadline(lease.check.timeout / 1000 + DEADLINE_SLACK_S):
            return await runner.run(lease.check, lease)
    except TimeoutError:
        log.error("check_overran", kind=kind, target_id=lease.target_id)
        message = f"the {kind} runner overran the check's timeout"
    except Exception as exc:
        log.exception("check_crashed", kind=kind, target_id=lease.target_id)
        message = f"internal error in the {kind} runner: {type(exc).__name__}"
    return Attempt(lease, started_at=datetime.fromtimestamp(started, UTC)).probe_error(message)


async def close_runners(runners: Mapping[str, CheckRunner[Any]]) -> None:
    """Release what runners keep between checks (the HTTP runner's session): each runner's
    ``close()``, if it has one, awaited if it is a coroutine."""
    for runner in runners.values():
        close = getattr(runner, "close", None)
        if close is not None:
            closing = close()
            if inspect.isawaitable(closing):
                await closing
