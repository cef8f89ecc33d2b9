"""The ICMP runner against real echo replies from the loopback interface.

Paths the host's own settings decide (an unprivileged datagram socket, a host that ignores echo
requests, an agent allowed neither socket kind, replies that stop mid-check) run in a child
process inside a network namespace of its own (``unshare -n``): its ``ping_group_range`` and
``icmp_echo_ignore_all`` are that namespace's, so nothing on the machine changes and every packet
stays on that namespace's loopback. No packet ever leaves the machine (no TEST-NET address is
pinged: the workplace allows loopback traffic only).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from probe_agent.checks import RUNNERS, run_lease
from probe_agent.checks.icmp import IcmpRunner, open_socket
from shared.checks import IcmpCheck
from shared.protocol import CheckResult
from tests.probe_agent.helpers import make_lease

ROOT = Path(__file__).resolve().parents[2]


def _icmp_permitted() -> bool:
    try:
        sock, _ = open_socket(4)
    except Exception:
        return False
    sock.close()
    return True


needs_icmp = pytest.mark.skipif(
    not _icmp_permitted(),
    reason="this test process may open neither an ICMP datagram nor raw socket",
)


def _can_unshare() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    return probe.returncode == 0


needs_netns = pytest.mark.skipif(
    not _can_unshare() or shutil.which("setpriv") is None,
    reason="needs unshare -n (root or user namespaces), ip and setpriv to isolate sysctls",
)


async def ping(spec: IcmpCheck, runner: IcmpRunner | None = None) -> CheckResult:
    lease = make_lease(spec)
    result = await (runner or IcmpRunner()).run(spec, lease)
    assert result.lease_id == lease.lease_id and result.target_id == lease.target_id
    return result


def in_netns(
    setup: list[str],
    spec: dict[str, Any],
    *,
    as_nobody: bool = False,
    lo_up: bool = True,
    ignore_echo_after_ms: int | None = None,
    **runner: Any,
) -> dict[str, Any]:
    """Run one check in a fresh network namespace after ``setup`` (shell lines run as root
    there); the result comes back as JSON. ``ignore_echo_after_ms``: that long after the check
    starts, the namespace stops answering echo requests."""
    script = textwrap.dedent(
        f"""
        import asyncio, json, sys
        import msgspec
        from probe_agent.checks.icmp import IcmpRunner
        from shared.checks import IcmpCheck
        from tests.probe_agent.helpers import make_lease

        def ignore():
            with open("/proc/sys/net/ipv4/icmp_echo_ignore_all", "w") as f:
                f.write("1")

        async def main():
            spec = msgspec.convert({spec!r}, IcmpCheck)
            runner = IcmpRunner(**{runner!r})
            if {ignore_echo_after_ms!r} is not None:
                asyncio.get_running_loop().call_later({ignore_echo_after_ms!r} / 1000, ignore)
            result = await runner.run(spec, make_lease(spec))
            print(msgspec.json.encode(result).decode())

        asyncio.run(main())
        """
    )
    drop = (
        "exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "
        "--bounding-set=-all "
        if as_nobody
        else "exec "
    )
    shell = "\n".join(
        [
            "set -e",
            "ip link set lo up" if lo_up else "true",
            *setup,
            f'{drop}"$PYTHON" -c "$SCRIPT"',
        ]
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHON": sys.executable, "SCRIPT": script}
    done = subprocess.run(
        ["unshare", "-n", "sh", "-c", shell],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def _assert_rtt_stats(details: dict[str, Any], count: int) -> None:
    assert details["sent"] == count and details["received"] == count
    assert details["packet_loss"] == 0.0
    rtts = details["rtts_ms"]
    assert len(rtts) == count and all(r >= 0 for r in rtts)
    assert details["rtt_min_ms"] == min(rtts) and details["rtt_max_ms"] == max(rtts)
    assert details["rtt_min_ms"] <= details["rtt_avg_ms"] <= details["rtt_max_ms"]


@needs_icmp
async def test_loopback_answers_every_echo_with_rtt_stats() -> None:
    result = await ping(IcmpCheck(host="127.0.0.1", count=4, interval=20, timeout=2000))
    assert result.status == "up", result.error
    assert result.error is None and result.error_code is None
    _assert_rtt_stats(result.details, 4)
    assert result.details["address"] == "127.0.0.1"
    assert result.details["mode"] in ("dgram", "raw")
    assert result.latency_ms == result.details["rtt_avg_ms"]
    assert result.latency_ms is not None and result.latency_ms < 100


@needs_icmp
async def test_ipv6_loopback_and_a_name_resolve_and_answer() -> None:
    v6 = await ping(IcmpCheck(host="[::1]", count=2, interval=20))
    assert v6.status == "up", v6.error
    assert v6.details["address"] == "::1"
    _assert_rtt_stats(v6.details, 2)
    named = await ping(IcmpCheck(host="localhost", count=1))
    assert named.status == "up", named.error
    assert named.details["address"] in ("127.0.0.1", "::1")
    assert named.timings.dns_ms is not None


async def test_the_ssrf_guard_refuses_loopback_unless_the_lease_allows_private() -> None:
    # Through the registered runner: nothing is sent, whatever the socket permissions.
    lease = make_lease(IcmpCheck(host="127.0.0.1", count=1), allow_private=False)
    result = await run_lease(lease, RUNNERS)
    assert result.status == "error"
    assert result.error_code == "SSRF_BLOCKED"
    assert result.details == {"address": "127.0.0.1", "range": "127.0.0.0/8"}
    named = make_lease(IcmpCheck(host="localhost", count=1), allow_private=False)
    result = await run_lease(named, RUNNERS)
    assert result.error_code == "SSRF_BLOCKED"
    assert result.details["host"] == "localhost"


async def test_an_unknown_name_is_down_with_dns_failure() -> None:
    result = await ping(IcmpCheck(host="no-such-host.invalid", count=1))
    assert result.status == "down"
    assert result.error_code == "DNS_FAILURE"


@needs_netns
def test_unprivileged_datagram_socket_when_the_group_is_allowed() -> None:
    result = in_netns(
        ['sysctl -qw net.ipv4.ping_group_range="0 2147483647"'],
        {"host": "127.0.0.1", "count": 3, "interval": 20},
        as_nobody=True,  # uid/gid 65534 without any capability: a raw socket is out of reach
    )
    assert result["status"] == "up", result
    assert result["details"]["mode"] == "dgram"
    _assert_rtt_stats(result["details"], 3)


@needs_netns
def test_a_host_that_drops_every_echo_is_down_with_full_loss() -> None:
    result = in_netns(
        ["sysctl -qw net.ipv4.icmp_echo_ignore_all=1"],
        {"host": "127.0.0.1", "count": 3, "interval": 50, "timeout": 800},
    )
    assert result["status"] == "down", result
    assert result["error_code"] == "TIMEOUT"
    assert result["error"] == (
        "no reply from 127.0.0.1 to 3 echo request(s) within 800 ms (100% packet loss)"
    )
    details = result["details"]
    assert details["sent"] == 3 and details["received"] == 0
    assert details["packet_loss"] == 100.0
    assert "rtt_avg_ms" not in details
    assert 800 <= result["latency_ms"] < 2000


@needs_netns
def test_replies_that_stop_mid_check_are_degraded_with_the_loss_named() -> None:
    # The host stops answering 200 ms in: the first echo (t=0) is answered, the ones at 500 and
    # 1000 ms are not.
    result = in_netns(
        [],
        {"host": "127.0.0.1", "count": 3, "interval": 500, "timeout": 1800},
        ignore_echo_after_ms=200,
    )
    assert result["status"] == "degraded", result
    assert result["error_code"] == "PACKET_LOSS"
    assert result["error"] == "2 of 3 echo requests to 127.0.0.1 lost (66.7% packet loss)"
    assert result["details"]["received"] == 1 and result["details"]["packet_loss"] == 66.7
    assert result["details"]["rtt_min_ms"] == result["details"]["rtt_max_ms"]


@needs_netns
def test_neither_socket_permitted_is_an_error_not_down() -> None:
    # The namespace's default ping_group_range ("1 0") allows no group the unprivileged
    # socket, and a process without CAP_NET_RAW gets no raw socket: what the kernel forbids.
    result = in_netns([], {"host": "127.0.0.1", "count": 1}, as_nobody=True)
    assert result["status"] == "error", result
    assert result["error_code"] == "ICMP_NOT_PERMITTED"
    assert "dgram: Permission denied" in result["error"]
    assert "raw: Operation not permitted" in result["error"]
    assert result["details"] == {}


@needs_netns
def test_forcing_raw_mode_without_the_capability_is_not_permitted() -> None:
    result = in_netns(
        ['sysctl -qw net.ipv4.ping_group_range="0 2147483647"'],
        {"host": "127.0.0.1", "count": 1},
        as_nobody=True,
        mode="raw",
    )
    assert result["status"] == "error"
    assert result["error_code"] == "ICMP_NOT_PERMITTED"


@needs_netns
def test_no_route_to_the_host_is_down_unreachable() -> None:
    # Loopback never brought up in the namespace: the kernel has no route for 127.0.0.1.
    result = in_netns([], {"host": "127.0.0.1", "count": 2}, lo_up=False)
    assert result["status"] == "down", result
    assert result["error_code"] == "HOST_UNREACHABLE"
    assert result["details"]["sent"] == 0
