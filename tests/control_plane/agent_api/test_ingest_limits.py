"""Ingest refuses a row whose values cannot be stored, with a code, and stores the rest of the
batch (a whole batch failing made the agent re-send it forever)."""

from __future__ import annotations

import json
import time
from typing import Any

import msgspec
import pytest

from control_plane.domain.agent_api.ingest_rows import check_values
from shared.protocol import MAX_DETAILS_BYTES, CheckResult
from tests.conftest import Persona, assert_error
from tests.monitoring_helpers import fetch, make_agent, make_due, make_target, result_for

BAD_ROWS: list[tuple[str, dict[str, Any], str]] = [
    ("status_code", {"status_code": 40000}, "status_code 40000"),
    ("negative status_code", {"status_code": -1}, "status_code -1"),
    ("latency_ms", {"latency_ms": 1e300}, "latency_ms"),
    ("negative latency_ms", {"latency_ms": -5.0}, "latency_ms"),
    ("timing", {"timings": {"dns_ms": 1e308}}, "timings.dns_ms"),
    ("negative timing", {"timings": {"tls_ms": -0.5}}, "timings.tls_ms"),
    ("total timing", {"timings": {"total_ms": 1e39}}, "timings.total_ms"),
    ("error_code", {"error_code": "E" * 65}, "error_code"),
    ("details", {"details": {"body": "x" * MAX_DETAILS_BYTES}}, "details"),
]


async def leases_for(owner: Persona, operator: Persona, db_url: str, n: int) -> list[Any]:
    targets = [await make_target(owner, name=f"t{i}") for i in range(n)]
    for t in targets:
        await make_due(db_url, t["id"])
    agent = await make_agent(operator)
    leases = (await agent.lease(max_n=n)).json()["leases"]
    assert len(leases) == n
    return [agent, leases]


async def test_rows_out_of_range_are_rejected_one_by_one_and_the_rest_is_stored(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    agent, leases = await leases_for(owner, operator, db_url, len(BAD_ROWS) + 2)
    good = [result_for(leases[0]), result_for(leases[-1], status="down")]
    bad = [
        result_for(lease, **extra)
        for lease, (_, extra, _) in zip(leases[1:-1], BAD_ROWS, strict=True)
    ]
    resp = await agent.ingest([good[0], *bad, good[1]])
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["accepted"] == 2
    assert [r["index"] for r in body["rejected"]] == list(range(1, len(BAD_ROWS) + 1))
    for rejected, (label, _, named) in zip(body["rejected"], BAD_ROWS, strict=True):
        assert rejected["code"] == "INVALID_RESULT", (label, rejected)
        assert named in rejected["message"], (label, rejected)
    stored = await fetch(db_url, "SELECT target_id::text FROM results WHERE status <> 'missed'")
    assert {r[0] for r in stored} == {leases[0]["target_id"], leases[-1]["target_id"]}


async def test_a_number_json_cannot_hold_refuses_the_batch_as_a_client_error(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    """``1e999`` is past any float: the decoder refuses the document, so the batch is a 400 (the
    agent drops a refused batch; it never re-sends it). msgspec encodes no such number."""
    agent, (lease, other) = await leases_for(owner, operator, db_url, 2)
    rows = [result_for(lease), result_for(other)]
    raw = json.dumps({"results": rows}).replace('"latency_ms": 12.5', '"latency_ms": 1e999', 1)
    resp = await agent.persona.post(
        "/api/agent/ingest", content=raw, headers={"Content-Type": "application/json"}
    )
    assert_error(resp, 400, "INVALID_JSON")


async def test_details_at_the_limit_are_stored(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    agent, (lease,) = await leases_for(owner, operator, db_url, 1)
    fits = {"body": "x" * (MAX_DETAILS_BYTES - 20)}
    assert len(msgspec.json.encode(fits)) <= MAX_DETAILS_BYTES
    resp = await agent.ingest([result_for(lease, details=fits)])
    assert resp.json() == {"accepted": 1, "duplicates": 0, "rejected": []}


@pytest.mark.parametrize("measure", [False, True])
def test_row_checks_cost_microseconds(measure: bool) -> None:
    """The checks on 1,000 rows, as ingest runs them (a loose bound: a shared machine)."""
    row = msgspec.json.encode(
        {
            "lease_id": "x",
            "target_id": "t",
            "scheduled_at": "2026-05-12T00:00:00Z",
            "started_at": "2026-05-12T00:00:00Z",
            "finished_at": "2026-05-12T00:00:01Z",
            "status": "up",
            "latency_ms": 120.5,
            "status_code": 200,
            "timings": {"dns_ms": 1.0, "connect_ms": 2.0, "tls_ms": 3.0, "ttfb_ms": 4.0},
            "details": {"assertions": [{"type": "status_code", "passed": True, "actual": 200}]},
        }
    )
    rows = [msgspec.json.decode(row, type=CheckResult) for _ in range(1000)]
    started = time.perf_counter()
    for r in rows:
        assert check_values(r, measure_details=measure) is None
    elapsed = time.perf_counter() - started
    print(f"row checks, 1,000 rows, measure_details={measure}: {elapsed * 1000:.2f} ms")
    assert elapsed < 0.1
