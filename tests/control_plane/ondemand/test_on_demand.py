"""On-demand checks through real agents: ``POST /targets/test`` and ``/targets/{id}/check-now``.

The control plane is served on a real port (uvicorn, in this process) and every caller (tenant,
operator, agents) talks to it over HTTP: Litestar's test client would block this event loop
for the whole of a request, and with it the agents that must answer the request meanwhile. The
probe agents run their real loop in this process; the probed target is a local aiohttp server
that records what it receives.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiohttp import web
from litestar.testing import AsyncTestClient
from psycopg.types.json import Jsonb

from control_plane.app import create_app
from control_plane.domain.agent_api.lease_ids import LeaseClaim, LeaseSigner
from control_plane.domain.agent_api.wakeups import Wakeups
from control_plane.security.sealing import Sealer
from control_plane.settings import Settings
from probe_agent.agent import Agent
from probe_agent.config import AgentConfig
from tests.conftest import Persona, assert_error, make_org
from tests.monitoring_helpers import (
    AgentHandle,
    fetch,
    make_agent,
    make_due,
    make_target,
    result_for,
)
from tests.stack import OPERATOR_TOKEN

GUARD_S = 30.0


class Probed:
    """The target: /ok answers 200, /fail 500, /json a JSON document; every request's headers
    are kept."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def _ok(self, request: web.Request) -> web.Response:
        self.seen.append(dict(request.headers))
        return web.Response(text="ok")

    async def _fail(self, request: web.Request) -> web.Response:
        self.seen.append(dict(request.headers))
        return web.Response(status=500, text="broken")

    async def _json(self, request: web.Request) -> web.Response:
        self.seen.append(dict(request.headers))
        return web.json_response({"status": "degraded", "version": 3}, headers={"X-Build": "77"})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ok", self._ok)
        app.router.add_get("/fail", self._fail)
        app.router.add_get("/json", self._json)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.port = self.runner.addresses[0][1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def probed() -> AsyncIterator[Probed]:
    p = Probed()
    await p.start()
    try:
        yield p
    finally:
        assert p.runner is not None
        await p.runner.cleanup()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[str]:
    """A second control-plane replica on a real port, for the agents."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            log_config=None,
            lifespan="on",
            # A long-poll lease still open at the end of a test need not be waited for.
            timeout_graceful_shutdown=1,
        )
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + GUARD_S
    while not server.started:
        assert not task.done(), "uvicorn stopped before it started"
        assert time.monotonic() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, GUARD_S)


@pytest.fixture
async def http(served: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served, timeout=GUARD_S) as client:
        yield client


# The personas of tests/conftest.py, calling the served replica over HTTP.
@pytest.fixture
async def owner(http: httpx.AsyncClient, db_url: str) -> Persona:
    org_id, token = await make_org(db_url, "Acme")
    return Persona(http, {"Authorization": f"Bearer {token}"}, org_id)  # type: ignore[arg-type]


@pytest.fixture
async def outsider(http: httpx.AsyncClient, db_url: str) -> Persona:
    org_id, token = await make_org(db_url, "Umbrella")
    return Persona(http, {"Authorization": f"Bearer {token}"}, org_id)  # type: ignore[arg-type]


@pytest.fixture
def operator(http: httpx.AsyncClient) -> Persona:
    return Persona(http, {"Authorization": f"Bearer {OPERATOR_TOKEN}"})  # type: ignore[arg-type]


AgentStarter = Callable[[str], Awaitable[AgentHandle]]


@pytest.fixture
async def start_agent(
    served: str, operator: Persona, db_url: str, tmp_path: Path
) -> AsyncIterator[AgentStarter]:
    """Starts a real probe agent of a region (its loop runs in this process)."""
    running: list[tuple[Agent, asyncio.Task[int]]] = []

    async def start(region: str) -> AgentHandle:
        handle = await make_agent(operator, region, name=f"agent-{region}")
        config = AgentConfig(
            control_plane=served,
            token=handle.token,
            spool_dir=tmp_path / f"spool-{region}",
            lease_wait_ms=20_000,  # the agent's default long-poll
            batch_age_ms=1000,  # and its default batching
        )
        agent = Agent(config)
        running.append((agent, asyncio.create_task(agent.run())))
        deadline = time.monotonic() + GUARD_S
        while not await fetch(
            db_url,
            "SELECT 1 FROM agents WHERE id = %s AND last_seen_at IS NOT NULL",
            uuid.UUID(handle.id),
        ):
            assert time.monotonic() < deadline, "the agent never called in"
            await asyncio.sleep(0.05)
        return handle

    try:
        yield start
    finally:
        for agent, _ in running:
            agent.request_stop()
        for _, task in running:
            assert await asyncio.wait_for(task, GUARD_S) == 0


async def _rows(db_url: str, table: str) -> int:
    (row,) = await fetch(db_url, f"SELECT count(*) FROM {table}")
    return int(row[0])


# --- POST /targets/test -----------------------------------------------------------------------


async def test_one_shot_test_runs_on_an_agent_and_keeps_nothing(
    owner: Persona, start_agent: AgentStarter, probed: Probed, db_url: str
) -> None:
    await start_agent("default")
    started = time.monotonic()
    resp = await owner.post(
        "/api/v1/targets/test",
        json={"check": {"type": "http", "url": probed.url("/ok"), "timeout": 2000}},
    )
    took = time.monotonic() - started
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"result", "matched_expectations", "warnings"}
    assert body["matched_expectations"] is True, body["result"]
    assert body["warnings"] == []
    result = body["result"]
    assert result["status"] == "up" and result["status_code"] == 200
    assert result["region"] == "default"
    assert result["latency_ms"] is not None
    assert len(probed.seen) == 1  # the agent really probed it
    assert took < 5, took  # long-poll wake (<= 0.5 s) + check + batch (1 s) + ingest

    down = await owner.post(
        "/api/v1/targets/test",
        json={
            "check": {"type": "http", "url": probed.url("/fail"), "verify_tls": False},
            "interval": 5,
        },
    )
    assert down.status_code == 200, down.text
    body = down.json()
    assert body["matched_expectations"] is False
    assert body["result"]["status"] == "down"
    assert body["result"]["status_code"] == 500
    assert "expected status" in body["result"]["error"]
    assert any("verify_tls" in w for w in body["warnings"])
    assert any("MIN_CHECK_INTERVAL" in w for w in body["warnings"])

    for table in ("targets", "results", "on_demand_checks", "evaluation_queue"):
        assert await _rows(db_url, table) == 0, table


async def test_one_shot_test_sends_the_credentials_it_was_given(
    owner: Persona, start_agent: AgentStarter, probed: Probed
) -> None:
    await start_agent("default")
    resp = await owner.post(
        "/api/v1/targets/test",
        json={"check": {"type": "http", "url": probed.url("/ok"), "bearer_token": "s3cr3t"}},
    )
    assert resp.status_code == 200, resp.text
    assert probed.seen[-1]["Authorization"] == "Bearer s3cr3t"


async def test_one_shot_test_validates_like_create(owner: Persona) -> None:
    assert_error(
        await owner.post("/api/v1/targets/test", json={"check": {"type": "http", "url": "nope"}}),
        400,
        "INVALID_URL_FORMAT",
        "/check/url",
    )
    assert_error(
        await owner.post(
            "/api/v1/targets/test",
            json={"check": {"type": "http", "url": "https://example.com", "timeout": -1}},
        ),
        400,
        "INVALID_TIMEOUT",
        "/check/timeout",
    )
    assert_error(
        await owner.post(
            "/api/v1/targets/test", json={"check": {"type": "tcp", "host": "example.com"}}
        ),
        400,
        "MISSING_FIELD",
    )
    assert_error(
        await owner.post(
            "/api/v1/targets/test",
            json={"check": {"type": "http", "url": "https://example.com"}, "extra": 1},
        ),
        400,
        "UNKNOWN_FIELD",
    )
    assert_error(
        await owner.post(
            "/api/v1/targets/test",
            json={"check": {"type": "http", "url": "https://example.com"}, "region": "mars"},
        ),
        400,
        "UNKNOWN_REGION",
        "/region",
    )
    assert_error(
        await owner.post(
            "/api/v1/targets/test", json={"check": {"type": "heartbeat", "grace": 60}}
        ),
        422,
        "HEARTBEAT_HAS_NO_REGIONS",
    )


async def test_one_shot_test_refuses_blocked_ip_literals(settings: Settings, db_url: str) -> None:
    security = dataclasses.replace(settings.security, allow_private_targets=False)
    app = create_app(dataclasses.replace(settings, security=security))
    async with AsyncTestClient(app=app) as client:
        _, token = await make_org(db_url, "Guarded")
        guarded = Persona(client, {"Authorization": f"Bearer {token}"})
        err = assert_error(
            await guarded.post(
                "/api/v1/targets/test",
                json={"check": {"type": "http", "url": "http://169.254.169.254/latest"}},
            ),
            400,
            "SSRF_BLOCKED",
            "/check/url",
        )
        assert err["details"]["range"] == "169.254.0.0/16"
    assert await _rows(db_url, "on_demand_checks") == 0


async def test_no_agent_serving_the_region_is_503(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    check = {"check": {"type": "http", "url": "https://example.com/"}}
    err = assert_error(
        await owner.post("/api/v1/targets/test", json=check), 503, "PROBE_UNAVAILABLE"
    )
    assert err["details"] == {"regions": ["default"]}
    target = await make_target(owner)
    assert_error(
        await owner.post(f"/api/v1/targets/{target['id']}/check-now"), 503, "PROBE_UNAVAILABLE"
    )
    # An agent that has not called in for a while, or a revoked one, serves nothing.
    agent = await make_agent(operator)
    await fetch(
        db_url,
        "UPDATE agents SET last_seen_at = now() - interval '10 minutes' WHERE id = %s",
        uuid.UUID(agent.id),
    )
    assert_error(await owner.post("/api/v1/targets/test", json=check), 503, "PROBE_UNAVAILABLE")
    await fetch(
        db_url,
        "UPDATE agents SET last_seen_at = now(), revoked_at = now() WHERE id = %s",
        uuid.UUID(agent.id),
    )
    assert_error(await owner.post("/api/v1/targets/test", json=check), 503, "PROBE_UNAVAILABLE")
    assert await _rows(db_url, "on_demand_checks") == 0


async def test_a_job_nobody_answers_is_504_and_leaves_nothing(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    agent = await make_agent(operator)
    assert (await agent.lease(wait_ms=0)).status_code == 200  # the agent is now "seen"

    async def lease_without_answering() -> dict[str, Any]:
        resp = await agent.lease(wait_ms=10_000)
        assert resp.status_code == 200, resp.text
        (lease,) = resp.json()["leases"]
        return dict(lease)

    leasing = asyncio.create_task(lease_without_answering())
    resp = await owner.post(
        "/api/v1/targets/test",
        json={"check": {"type": "http", "url": "https://example.com/", "timeout": 500}},
    )
    err = assert_error(resp, 504, "PROBE_TIMEOUT")
    assert err["details"] == {"regions": ["default"]}
    lease = await leasing
    assert lease["check"]["url"] == "https://example.com/"
    assert await _rows(db_url, "on_demand_checks") == 0
    # The late answer is acknowledged and stored nowhere.
    late = await agent.ingest([result_for(lease)])
    assert late.status_code == 200, late.text
    assert late.json()["rejected"] == []
    assert await _rows(db_url, "results") == 0


# --- POST /targets/{id}/check-now -------------------------------------------------------------


async def test_check_now_persists_one_result_per_region(
    owner: Persona, start_agent: AgentStarter, probed: Probed, db_url: str
) -> None:
    await start_agent("default")
    await start_agent("east")
    target = await make_target(
        owner,
        probed.url("/ok"),
        interval=3600,  # no scheduled slot falls due during the test
        check={
            "type": "http",
            "url": probed.url("/ok"),
            "basic_auth": ["user", "pa55"],
            "timeout": 2000,
        },
    )
    tid = target["id"]
    resp = await owner.put(f"/api/v1/targets/{tid}/regions", json={"regions": ["default", "east"]})
    assert resp.status_code == 200, resp.text

    resp = await owner.post(f"/api/v1/targets/{tid}/check-now")
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert [r["region"] for r in results] == ["default", "east"]
    assert all(r["status"] == "up" and r["target_id"] == tid for r in results)
    # The stored (sealed) credentials were opened for the agents.
    assert len(probed.seen) == 2
    assert {h["Authorization"] for h in probed.seen} == {"Basic dXNlcjpwYTU1"}

    stored = await fetch(
        db_url,
        "SELECT region_id, scheduled_at, status, agent_id FROM results WHERE target_id = %s"
        " ORDER BY region_id",
        uuid.UUID(tid),
    )
    assert [(r[0], r[2]) for r in stored] == [("default", "up"), ("east", "up")]
    for (_, at, _, agent_id), shown in zip(stored, results, strict=True):
        assert at == datetime.fromisoformat(shown["timestamp"])
        assert at.microsecond % 1000 != 0  # off the grid of scheduled slots (whole ms)
        assert agent_id is not None
    page = await owner.get(f"/api/v1/targets/{tid}/results")
    assert page.status_code == 200, page.text
    assert page.json()["total"] == 2
    # The jobs are done; the schedule's own slots were not touched.
    assert await fetch(db_url, "SELECT DISTINCT state FROM on_demand_checks") == [("done",)]
    (row,) = await fetch(
        db_url,
        "SELECT count(*) FROM schedules WHERE target_id = %s AND leased_by IS NOT NULL",
        uuid.UUID(tid),
    )
    assert row[0] == 0


async def test_check_now_of_a_failing_target_reports_down(
    owner: Persona, start_agent: AgentStarter, probed: Probed
) -> None:
    await start_agent("default")
    target = await make_target(owner, probed.url("/fail"), interval=3600)
    resp = await owner.post(f"/api/v1/targets/{target['id']}/check-now")
    assert resp.status_code == 200, resp.text
    (result,) = resp.json()["results"]
    assert result["status"] == "down" and result["status_code"] == 500


ASSERTIONS = [
    {"type": "status_code", "operator": "equals", "value": "200"},
    {"type": "header", "name": "x-build", "operator": "equals", "value": "77"},
    {"type": "json_path", "path": "$.status", "operator": "equals", "value": "ok"},
]


async def test_one_shot_test_reports_assertions_in_matched_expectations(
    owner: Persona, start_agent: AgentStarter, probed: Probed
) -> None:
    await start_agent("default")
    check = {"type": "http", "url": probed.url("/json"), "timeout": 2000}
    resp = await owner.post(
        "/api/v1/targets/test", json={"check": {**check, "assertions": ASSERTIONS}}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["matched_expectations"] is False
    result = body["result"]
    assert result["status"] == "down" and result["status_code"] == 200
    assert result["error_code"] == "ASSERTION_FAILED"
    assert result["error"] == 'assertion failed: json_path $.status equals "ok" (actual "degraded")'
    assert [a["passed"] for a in result["details"]["assertions"]] == [True, True, False]

    passing = [*ASSERTIONS[:2], {**ASSERTIONS[2], "value": "degraded"}]
    resp = await owner.post(
        "/api/v1/targets/test", json={"check": {**check, "assertions": passing}}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["matched_expectations"] is True, body["result"]
    assert body["result"]["status"] == "up"

    resp = await owner.post(
        "/api/v1/targets/test",
        json={"check": {**check, "assertions": [{**ASSERTIONS[2], "path": "$[?(@.x)]"}]}},
    )
    assert_error(resp, 400, "INVALID_ASSERTION", "/check/assertions/0/path")


async def test_a_failing_assertion_is_stored_with_the_result(
    owner: Persona, start_agent: AgentStarter, probed: Probed, db_url: str
) -> None:
    await start_agent("default")
    target = await make_target(
        owner,
        interval=3600,
        check={"type": "http", "url": probed.url("/json"), "assertions": ASSERTIONS},
    )
    tid = target["id"]
    resp = await owner.post(f"/api/v1/targets/{tid}/check-now")
    assert resp.status_code == 200, resp.text
    (shown,) = resp.json()["results"]
    assert shown["status"] == "down" and shown["error_code"] == "ASSERTION_FAILED"

    ((status, error_code, details),) = await fetch(
        db_url,
        "SELECT status, error_code, details FROM results WHERE target_id = %s",
        uuid.UUID(tid),
    )
    assert (status, error_code) == ("down", "ASSERTION_FAILED")
    assert details["assertions"] == [
        {
            "type": "status_code",
            "operator": "equals",
            "expected": 200,
            "actual": 200,
            "passed": True,
        },
        {
            "type": "header",
            "operator": "equals",
            "name": "x-build",
            "expected": "77",
            "actual": "77",
            "passed": True,
        },
        {
            "type": "json_path",
            "operator": "equals",
            "path": "$.status",
            "expected": "ok",
            "actual": "degraded",
            "passed": False,
        },
    ]
    page = await owner.get(f"/api/v1/targets/{tid}/results")
    assert page.status_code == 200, page.text
    (listed,) = page.json()["items"]
    assert listed["details"]["assertions"] == details["assertions"]


async def test_a_scheduled_slot_stores_its_assertions(
    owner: Persona, start_agent: AgentStarter, probed: Probed, db_url: str
) -> None:
    """The ordinary path: a due slot leased by a real agent, run, ingested, stored."""
    target = await make_target(
        owner,
        interval=3600,
        check={"type": "http", "url": probed.url("/json"), "assertions": ASSERTIONS[1:]},
    )
    tid = target["id"]
    await make_due(db_url, tid)
    await start_agent("default")
    deadline = time.monotonic() + GUARD_S
    while not (
        rows := await fetch(
            db_url,
            "SELECT status, error, error_code, details FROM results WHERE target_id = %s",
            uuid.UUID(tid),
        )
    ):
        assert time.monotonic() < deadline, "no result was stored"
        await asyncio.sleep(0.1)
    ((status, error, error_code, details),) = rows
    assert (status, error_code) == ("down", "ASSERTION_FAILED")
    assert error == 'assertion failed: json_path $.status equals "ok" (actual "degraded")'
    assert [(a["type"], a["passed"]) for a in details["assertions"]] == [
        ("header", True),
        ("json_path", False),
    ]


async def test_check_now_of_another_orgs_target_is_404(
    owner: Persona, outsider: Persona, operator: Persona
) -> None:
    await make_agent(operator)
    target = await make_target(owner)
    assert_error(
        await outsider.post(f"/api/v1/targets/{target['id']}/check-now"),
        404,
        "TARGET_NOT_FOUND",
    )
    assert_error(
        await owner.post(f"/api/v1/targets/{uuid.uuid4()}/check-now"), 404, "TARGET_NOT_FOUND"
    )
    assert_error(await owner.post("/api/v1/targets/not-a-uuid/check-now"), 404, "TARGET_NOT_FOUND")


async def test_check_now_of_a_heartbeat_is_refused(owner: Persona) -> None:
    resp = await owner.post(
        "/api/v1/targets", json={"name": "hb", "check": {"type": "heartbeat"}, "interval": 60}
    )
    assert resp.status_code == 201, resp.text
    assert_error(
        await owner.post(f"/api/v1/targets/{resp.json()['id']}/check-now"),
        422,
        "HEARTBEAT_HAS_NO_REGIONS",
    )


async def test_check_now_result_arriving_late_is_still_stored(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    agent = await make_agent(operator)
    assert (await agent.lease(wait_ms=0)).status_code == 200
    target = await make_target(
        owner, interval=3600, check={"type": "http", "url": "https://example.com/", "timeout": 500}
    )
    leasing = asyncio.create_task(agent.lease(wait_ms=10_000))
    assert_error(
        await owner.post(f"/api/v1/targets/{target['id']}/check-now"), 504, "PROBE_TIMEOUT"
    )
    (lease,) = (await leasing).json()["leases"]
    assert lease["target_id"] == target["id"]
    late = await agent.ingest([result_for(lease, "down")])
    assert late.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    again = await agent.ingest([result_for(lease, "down")])
    assert again.json() == {"accepted": 0, "duplicates": 1, "rejected": []}
    rows = await fetch(
        db_url, "SELECT status FROM results WHERE target_id = %s", uuid.UUID(target["id"])
    )
    assert rows == [("down",)]
    # Check-now results are evaluated with the target's next scheduled result, in time order.
    assert await _rows(db_url, "evaluation_queue") == 0


async def test_check_now_with_credentials_that_cannot_be_opened_fails_closed(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    agent = await make_agent(operator)
    assert (await agent.lease(wait_ms=0)).status_code == 200
    target = await make_target(
        owner,
        interval=3600,
        check={"type": "http", "url": "https://example.com/", "basic_auth": ["u", "pw"]},
    )
    tid = uuid.UUID(target["id"])
    retired = Sealer({"k9": os.urandom(32)}, "k9")  # a key this deployment does not have
    value = retired.seal('["u", "pw"]', Sealer.binding(owner.org_id, tid, "basic_auth"))
    await fetch(
        db_url, "UPDATE targets SET secrets = %s WHERE id = %s", Jsonb({"basic_auth": value}), tid
    )
    leasing = asyncio.create_task(agent.lease(wait_ms=3000))
    resp = await owner.post(f"/api/v1/targets/{tid}/check-now")
    assert resp.status_code == 200, resp.text
    (result,) = resp.json()["results"]
    assert (result["status"], result["error_code"]) == ("error", "SECRET_UNAVAILABLE")
    assert (await leasing).json()["leases"] == []  # never handed out without its credentials
    rows = await fetch(db_url, "SELECT status, error_code FROM results WHERE target_id = %s", tid)
    assert rows == [("error", "SECRET_UNAVAILABLE")]


async def test_the_on_demand_routes_are_documented(owner: Persona) -> None:
    doc = (await owner.get("/api/openapi.json")).json()
    test = doc["paths"]["/api/v1/targets/test"]["post"]
    now = doc["paths"]["/api/v1/targets/{target_id}/check-now"]["post"]
    assert (test["operationId"], now["operationId"]) == ("testTarget", "checkTargetNow")
    assert {"200", "400", "503", "504"} <= set(test["responses"])
    assert {"200", "404", "503", "504"} <= set(now["responses"])
    assert "PROBE_UNAVAILABLE" in now["responses"]["503"]["description"]


async def test_queuing_a_job_wakes_the_regions_long_polls_at_once(db_url: str) -> None:
    wakeups = Wakeups(db_url)
    async with wakeups.running():
        await asyncio.sleep(0.5)  # the listener connects
        started = time.monotonic()
        east = asyncio.create_task(wakeups.sleep("east", 10))
        west = asyncio.create_task(wakeups.sleep("west", 1))
        await asyncio.sleep(0.05)
        await fetch(db_url, "SELECT pg_notify('vigil_on_demand', 'east')")
        await asyncio.wait_for(east, 5)
        assert time.monotonic() - started < 2  # not the 10 s it was ready to wait
        assert not west.done()  # another region sleeps on
        await west


# --- lease ids --------------------------------------------------------------------------------


def test_on_demand_lease_ids_carry_their_job_and_ordinary_ids_are_unchanged() -> None:
    signer = LeaseSigner(b"k" * 32)
    now = datetime.fromisoformat("2030-01-01T00:00:00.000123+00:00")
    plain = LeaseClaim(uuid.uuid4(), uuid.uuid4(), "eu", now, now)
    job = dataclasses.replace(plain, job_id=uuid.uuid4())
    assert signer.verify(signer.issue(plain)) == plain
    assert signer.verify(signer.issue(job)) == job
    assert signer.issue(plain) != signer.issue(job)
    forged = signer.issue(job)
    assert signer.verify(forged[:-2] + ("AA" if forged[-2:] != "AA" else "BB")) is None
    assert LeaseSigner(b"x" * 32).verify(signer.issue(job)) is None
