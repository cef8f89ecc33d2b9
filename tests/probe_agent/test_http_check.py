"""The HTTP runner against real HTTP(S) servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC
from typing import Any

import msgspec
import pytest

from probe_agent import USER_AGENT
from probe_agent.checks.http import HttpRunner
from shared.checks import ExactStatus, HttpCheck, OneOfStatus, RangeStatus, StatusRange
from shared.protocol import CheckResult
from tests.probe_agent.conftest import Target
from tests.probe_agent.helpers import closed_port, make_lease


async def check(url: str, runner: HttpRunner | None = None, **spec: Any) -> CheckResult:
    http = HttpCheck(url=url, **spec)
    lease = make_lease(http)
    if runner is None:
        async with HttpRunner() as own:
            result = await own.run(http, lease)
    else:
        result = await runner.run(http, lease)
    assert result.lease_id == lease.lease_id
    assert result.target_id == lease.target_id
    assert result.scheduled_at == lease.scheduled_at
    return result


async def test_200_is_up_with_phase_timings(target: Target) -> None:
    result = await check(target.url("/ok"))
    assert result.status == "up"
    assert result.status_code == 200
    assert result.error is None and result.error_code is None
    t = result.timings
    assert t.connect_ms is not None and t.ttfb_ms is not None and t.total_ms is not None
    assert t.dns_ms is None  # an IP literal is not resolved
    assert t.tls_ms is None  # plain http
    assert result.latency_ms == t.total_ms
    assert result.started_at.tzinfo is UTC and result.finished_at.tzinfo is UTC
    assert result.started_at <= result.finished_at


async def test_hostname_target_reports_dns_time(target: Target) -> None:
    assert target.server is not None
    result = await check(f"http://localhost:{target.server.port}/ok")
    assert result.status == "up"
    assert result.timings.dns_ms is not None


async def test_500_is_down_with_unexpected_status(target: Target) -> None:
    result = await check(target.url("/status/500"))
    assert result.status == "down"
    assert result.status_code == 500
    assert result.error_code == "UNEXPECTED_STATUS"
    assert result.error == "expected status 200, got 500"


async def test_429_with_retry_after_is_degraded(target: Target) -> None:
    result = await check(target.url("/status/429?retry_after=120"))
    assert result.status == "degraded"
    assert result.status_code == 429
    assert result.error == "rate-limited 429 (Retry-After: 120)"
    assert result.error_code == "RATE_LIMITED"


async def test_503_with_retry_after_is_rate_limited(target: Target) -> None:
    result = await check(
        target.url("/status/503?retry_after=Wed,%2021%20Oct%202037%2007:28:00%20GMT")
    )
    assert result.status == "degraded"
    assert result.status_code == 503
    assert result.error == "rate-limited 503 (Retry-After: Wed, 21 Oct 2037 07:28:00 GMT)"
    assert result.error_code == "RATE_LIMITED"


@pytest.mark.parametrize("code", [429, 503])
@pytest.mark.parametrize("query", ["", "?retry_after=", "?retry_after=%20"])
async def test_429_or_503_without_retry_after_is_unavailable(
    target: Target, code: int, query: str
) -> None:
    # No Retry-After (or an empty one): not "back off", but "not serving you", with no end in
    # sight; the control plane counts it toward a degraded incident.
    result = await check(target.url(f"/status/{code}{query}"))
    assert result.status == "degraded"
    assert result.status_code == code
    assert result.error == f"unavailable {code} (no Retry-After)"
    assert result.error_code == "UNAVAILABLE"


async def test_429_accepted_by_one_of_is_up(target: Target) -> None:
    result = await check(
        target.url("/status/429?retry_after=5"), expected_status=OneOfStatus([200, 429])
    )
    assert result.status == "up"
    assert result.status_code == 429
    assert result.error is None


async def test_status_range(target: Target) -> None:
    in_range = RangeStatus(StatusRange(min=200, max=299))
    assert (await check(target.url("/status/204"), expected_status=in_range)).status == "up"
    outside = await check(target.url("/status/404"), expected_status=in_range)
    assert outside.status == "down"
    assert outside.error == "expected status 200-299, got 404"


async def test_body_contains_match_and_mismatch(target: Target) -> None:
    ok = await check(target.url("/ok"), expected_body_contains="all systems operational")
    assert ok.status == "up"
    bad = await check(target.url("/ok"), expected_body_contains="maintenance")
    assert bad.status == "down"
    assert bad.error_code == "BODY_MISMATCH"
    assert bad.status_code == 200
    assert bad.error == "response body does not contain 'maintenance'"


async def test_body_is_read_only_up_to_the_limit(target: Target) -> None:
    async with HttpRunner(body_limit=1024) as small:
        result = await check(target.url("/big"), runner=small, expected_body_contains="NEEDLE")
    assert result.status == "down"
    assert result.error_code == "BODY_MISMATCH"
    assert result.details["body_truncated_at"] == 1024
    assert (await check(target.url("/big"), expected_body_contains="NEEDLE")).status == "up"


async def test_method_headers_and_body_reach_the_server(target: Target) -> None:
    result = await check(
        target.url("/echo"),
        method="POST",
        headers={"X-Probe": "vigil", "Content-Type": "application/json"},
        body='{"ping": true}',
    )
    assert result.status == "up"
    sent = target.received[-1]
    assert sent.method == "POST"
    assert sent.headers["X-Probe"] == "vigil"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["User-Agent"] == f"{USER_AGENT} (region=test-region)"
    assert sent.body == b'{"ping": true}'


async def test_a_check_without_headers_sends_the_region_user_agent(target: Target) -> None:
    # The session sends it by default (no header dict per request): it must still name the
    # lease's region, for every lease a runner runs, whatever region it opened its session for.
    http = HttpCheck(url=target.url("/echo"))
    async with HttpRunner() as runner:
        for region in ("test-region", "other-region", "test-region"):
            lease = msgspec.structs.replace(make_lease(http), region=region)
            assert (await runner.run(http, lease)).status == "up"
            sent = target.received[-1]
            assert sent.user_agents == (f"{USER_AGENT} (region={region})",)


async def test_spec_headers_keep_the_region_user_agent_once(target: Target) -> None:
    await check(target.url("/echo"), headers={"X-Probe": "vigil"})
    assert target.received[-1].user_agents == (f"{USER_AGENT} (region=test-region)",)


async def test_spec_user_agent_replaces_the_default(target: Target) -> None:
    await check(target.url("/echo"), headers={"user-agent": "custom/1.0"})
    sent = target.received[-1]
    assert sent.user_agents == ("custom/1.0",)


async def test_basic_auth_reaches_the_server(target: Target) -> None:
    await check(target.url("/echo"), basic_auth=("alice", "s3cret"))
    expected = base64.b64encode(b"alice:s3cret").decode()
    assert target.received[-1].headers["Authorization"] == f"Basic {expected}"


async def test_bearer_token_reaches_the_server(target: Target) -> None:
    await check(target.url("/echo"), bearer_token="tok-123")
    assert target.received[-1].headers["Authorization"] == "Bearer tok-123"


async def test_both_credentials_is_a_probe_error(target: Target) -> None:
    result = await check(target.url("/echo"), basic_auth=("a", "b"), bearer_token="t")
    assert result.status == "error"
    assert result.error_code == "PROBE_ERROR"
    assert result.latency_ms is None
    assert target.received == []


async def test_redirects_followed_within_the_limit(target: Target) -> None:
    result = await check(target.url("/redirect/2"), follow_redirects=True, max_redirects=2)
    assert result.status == "up"
    assert result.details["redirects"] == 2
    assert result.details["final_url"].endswith("/redirect/0")
    assert [r.path for r in target.received] == ["/redirect/2", "/redirect/1", "/redirect/0"]
    # Every hop opened its own connection and its phases add up.
    assert len({r.peer for r in target.received}) == 3
    assert result.timings.ttfb_ms is not None


async def test_redirect_not_followed_is_judged_as_is(target: Target) -> None:
    result = await check(target.url("/redirect/1"))
    assert result.status == "down"
    assert result.status_code == 302
    assert result.error_code == "UNEXPECTED_STATUS"
    allowed = await check(target.url("/redirect/1"), expected_status=ExactStatus(302))
    assert allowed.status == "up"


async def test_too_many_redirects(target: Target) -> None:
    result = await check(target.url("/redirect/3"), follow_redirects=True, max_redirects=2)
    assert result.status == "down"
    assert result.error_code == "TOO_MANY_REDIRECTS"


async def test_timeout_is_down(target: Target) -> None:
    result = await check(target.url("/slow"), timeout=300)
    assert result.status == "down"
    assert result.error_code == "TIMEOUT"
    assert result.error == "no complete response within 300 ms"
    assert result.timings.connect_ms is not None


async def test_refused_port_is_down() -> None:
    result = await check(f"http://127.0.0.1:{closed_port()}/")
    assert result.status == "down"
    assert result.error_code == "CONNECTION_REFUSED"
    assert result.status_code is None


async def test_self_signed_tls_fails_verification(tls_target: Target) -> None:
    url = tls_target.url("/ok")
    assert url.startswith("https://")
    result = await check(url)
    assert result.status == "down"
    assert result.error_code == "TLS_ERROR"
    assert result.error is not None and "certificate" in result.error
    assert tls_target.received == []


async def test_self_signed_tls_without_verification_is_up(tls_target: Target) -> None:
    result = await check(tls_target.url("/ok"), verify_tls=False)
    assert result.status == "up"
    t = result.timings
    assert t.connect_ms is not None and t.tls_ms is not None and t.ttfb_ms is not None


async def test_every_check_opens_a_fresh_connection(target: Target) -> None:
    async with HttpRunner() as runner:
        for _ in range(3):
            assert (await check(target.url("/ok"), runner=runner)).status == "up"
    assert len(target.received) == 3
    assert len({r.peer for r in target.received}) == 3


async def test_concurrent_tls_checks_each_time_their_own_handshake(tls_target: Target) -> None:
    async with HttpRunner() as runner:
        got = await asyncio.gather(
            *(check(tls_target.url("/ok"), runner=runner, verify_tls=False) for _ in range(5))
        )
    assert [r.status for r in got] == ["up"] * 5
    assert all(r.timings.tls_ms is not None for r in got)
    assert len({r.peer for r in tls_target.received}) == 5


async def test_concurrent_checks_on_one_runner_keep_their_own_phases(target: Target) -> None:
    assert target.server is not None
    by_name = f"http://localhost:{target.server.port}/ok"
    async with HttpRunner() as runner:
        got = await asyncio.gather(
            *(check(by_name if i % 2 else target.url("/ok"), runner=runner) for i in range(8))
        )
    assert [r.status for r in got] == ["up"] * 8
    # Only the checks that named a host resolved it; each timed its own connection.
    assert [r.timings.dns_ms is not None for r in got] == [i % 2 == 1 for i in range(8)]
    assert all(r.timings.connect_ms is not None and r.timings.ttfb_ms is not None for r in got)
    assert len({r.peer for r in target.received}) == 8


async def test_a_closed_runner_opens_a_new_session_when_used_again(target: Target) -> None:
    runner = HttpRunner()
    assert (await check(target.url("/ok"), runner=runner)).status == "up"
    await runner.close()
    assert (await check(target.url("/ok"), runner=runner)).status == "up"
    await runner.close()
    assert len({r.peer for r in target.received}) == 2


async def test_a_runner_moves_to_another_event_loop(target: Target) -> None:
    runner = HttpRunner()

    def on_a_new_loop() -> str:
        return asyncio.run(check(target.url("/ok"), runner=runner)).status

    # Each asyncio.run is a new loop; the runner opens a session there (this loop serves).
    assert await asyncio.to_thread(on_a_new_loop) == "up"
    assert await asyncio.to_thread(on_a_new_loop) == "up"
    assert (await check(target.url("/ok"), runner=runner)).status == "up"
    await runner.close()
    assert len({r.peer for r in target.received}) == 3
