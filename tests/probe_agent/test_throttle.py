"""The per-host throttle: at most ``per_host_max_inflight`` checks of one org at one (host, port)
run at once; the rest are recorded ``degraded``/``THROTTLED`` without running; other orgs are not
starved; the counters come back down however a check ends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import msgspec
import pytest

from probe_agent.checks import build_runners, close_runners
from probe_agent.checks.base import Attempt
from probe_agent.config import ConfigError, parse_config
from probe_agent.metrics import AgentMetrics
from probe_agent.runner import CheckExecutor
from probe_agent.throttle import host_key, host_port
from shared.checks import (
    DnsCheck,
    DomainExpiryCheck,
    HttpCheck,
    IcmpCheck,
    TcpCheck,
    TlsCertCheck,
)
from shared.protocol import CheckResult, Lease
from tests.probe_agent.conftest import Target
from tests.probe_agent.helpers import make_lease
from tests.probe_agent.test_executor import until

ORG_A = str(uuid.uuid4())
ORG_B = str(uuid.uuid4())
TOKEN = "sm_agent_" + "x" * 20


def lease_for(url: str, org: str, timeout_ms: int = 5000) -> Lease:
    return msgspec.structs.replace(make_lease(HttpCheck(url=url, timeout=timeout_ms)), org_id=org)


@pytest.fixture
async def executor_and_results() -> AsyncIterator[tuple[CheckExecutor, list[CheckResult]]]:
    runners = build_runners()
    got: list[CheckResult] = []
    executor = CheckExecutor(10, got.append, AgentMetrics(), runners)
    try:
        yield executor, got
    finally:
        await executor.shutdown(0)
        await close_runners(runners)


async def test_a_third_concurrent_check_of_one_org_on_one_host_is_throttled(
    target: Target, executor_and_results: tuple[CheckExecutor, list[CheckResult]]
) -> None:
    executor, got = executor_and_results
    leases = [lease_for(target.url("/slow"), ORG_A) for _ in range(3)]
    for lease in leases:
        executor.submit(lease)
    await until(lambda: len(target.received) == 2 and len(got) == 1)
    (throttled,) = got
    assert throttled.status == "degraded"
    assert throttled.error == "throttled: host concurrency cap"
    assert throttled.error_code == "THROTTLED"
    assert throttled.latency_ms is None
    assert throttled.lease_id == leases[2].lease_id
    assert throttled.details["per_host_max_inflight"] == 2
    assert throttled.details["host"] == "127.0.0.1"
    await asyncio.sleep(0.1)
    assert len(target.received) == 2, "the throttled check reached the host"
    assert executor.host_inflight == {(ORG_A, "127.0.0.1", throttled.details["port"]): 2}
    target.release.set()
    await until(lambda: len(got) == 3)
    assert sorted(r.status for r in got) == ["degraded", "up", "up"]
    assert executor.host_inflight == {}
    # Released: the next check of the same org on the same host runs.
    executor.submit(lease_for(target.url("/ok"), ORG_A))
    await until(lambda: len(got) == 4)
    assert got[3].status == "up"


async def test_another_org_on_the_same_host_is_not_starved(
    target: Target, executor_and_results: tuple[CheckExecutor, list[CheckResult]]
) -> None:
    executor, got = executor_and_results
    for _ in range(3):
        executor.submit(lease_for(target.url("/slow"), ORG_A))
    await until(lambda: len(target.received) == 2 and len(got) == 1)
    for _ in range(2):
        executor.submit(lease_for(target.url("/slow"), ORG_B))
    await until(lambda: len(target.received) == 4)
    assert len(got) == 1  # org B's two checks run: nothing more was throttled
    target.release.set()
    await until(lambda: len(got) == 5)
    assert [r.error_code for r in got].count("THROTTLED") == 1
    assert executor.host_inflight == {}


async def test_counters_come_down_after_a_timeout_and_after_a_crash(target: Target) -> None:
    class Crashing:
        async def run(self, check: TcpCheck, lease: Lease) -> CheckResult:
            raise RuntimeError("bug")

    runners = {**build_runners(), "tcp": Crashing()}
    got: list[CheckResult] = []
    executor = CheckExecutor(10, got.append, AgentMetrics(), runners)
    try:
        # Two checks that time out on the never-answering /slow, then two more right after.
        for _ in range(2):
            executor.submit(lease_for(target.url("/slow"), ORG_A, timeout_ms=200))
        await until(lambda: len(got) == 2)
        assert [r.error_code for r in got] == ["TIMEOUT", "TIMEOUT"]
        assert executor.host_inflight == {}
        crash = [
            msgspec.structs.replace(make_lease(TcpCheck(host="127.0.0.1", port=9)), org_id=ORG_A)
            for _ in range(3)
        ]
        for lease in crash:
            executor.submit(lease)
        await until(lambda: len(got) == 5)
        assert [r.error_code for r in got[2:]] == ["PROBE_ERROR", "PROBE_ERROR", "PROBE_ERROR"]
        assert executor.host_inflight == {}
    finally:
        target.release.set()
        await executor.shutdown(0)
        await close_runners(runners)


async def test_cancelled_checks_release_their_slot(target: Target) -> None:
    class Gated:
        def __init__(self) -> None:
            self.gate = asyncio.Event()

        async def run(self, check: TcpCheck, lease: Lease) -> CheckResult:
            attempt = Attempt(lease)
            await self.gate.wait()
            return attempt.finish("up")

    got: list[CheckResult] = []
    executor = CheckExecutor(10, got.append, AgentMetrics(), {"tcp": Gated()})
    for _ in range(2):
        executor.submit(
            msgspec.structs.replace(make_lease(TcpCheck(host="db.test", port=5432)), org_id=ORG_A)
        )
    await until(lambda: sum(executor.host_inflight.values()) == 2)
    assert await executor.shutdown(0) == 2
    assert executor.host_inflight == {}


async def test_the_cap_is_configurable(target: Target) -> None:
    runners = build_runners()
    got: list[CheckResult] = []
    executor = CheckExecutor(10, got.append, AgentMetrics(), runners, per_host_max_inflight=3)
    try:
        for _ in range(4):
            executor.submit(lease_for(target.url("/slow"), ORG_A))
        await until(lambda: len(target.received) == 3 and len(got) == 1)
        assert got[0].error_code == "THROTTLED"
    finally:
        target.release.set()
        await executor.shutdown(1)
        await close_runners(runners)
    with pytest.raises(ValueError, match="per_host_max_inflight"):
        CheckExecutor(1, got.append, AgentMetrics(), runners, per_host_max_inflight=0)


def test_host_and_port_per_kind() -> None:
    assert host_port(HttpCheck(url="https://Example.COM./x")) == ("example.com", 443)
    assert host_port(HttpCheck(url="http://example.com/")) == ("example.com", 80)
    assert host_port(HttpCheck(url="http://[::1]:8080/")) == ("::1", 8080)
    assert host_port(TcpCheck(host="db.example.com", port=5432)) == ("db.example.com", 5432)
    assert host_port(TlsCertCheck(host="example.com")) == ("example.com", 443)
    assert host_port(DnsCheck(name="example.com", server="9.9.9.9")) == ("9.9.9.9", 53)
    assert host_port(DnsCheck(name="example.com")) is None  # the agent's own resolver
    assert host_port(IcmpCheck(host="[2001:db8::1]")) == ("2001:db8::1", 0)
    assert host_port(DomainExpiryCheck(domain="example.com")) is None
    lease = msgspec.structs.replace(make_lease(TcpCheck(host="h", port=1)), org_id=ORG_A)
    assert host_key(lease) == (ORG_A, "h", 1)
    # http and tls_cert on the same host and port share one cap.
    assert host_port(HttpCheck(url="https://example.com/")) == host_port(
        TlsCertCheck(host="example.com")
    )


def test_config_flag_and_environment() -> None:
    base = ["--control-plane", "http://cp.test", "--token", TOKEN]
    assert parse_config(base, {}).per_host_max_inflight == 2
    assert parse_config([*base, "--per-host-max-inflight", "5"], {}).per_host_max_inflight == 5
    env = {"VIGIL_AGENT_PER_HOST_MAX_INFLIGHT": "7"}
    assert parse_config(base, env).per_host_max_inflight == 7
    with pytest.raises(ConfigError, match="per-host-max-inflight"):
        parse_config([*base, "--per-host-max-inflight", "0"], {})
