"""GET /api/v1/targets/{id}/performance: per-phase p50/p95 and the slowest checks (issue 16)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from tests.conftest import Persona, assert_error
from tests.control_plane.targets.test_targets_fleet_reads import make

API = "/api/v1/targets"


async def test_performance_phases_and_slowest(
    owner: Persona, outsider: Persona, db_url: str
) -> None:
    (tid,) = await make(
        owner, [{"name": "svc", "check": {"type": "http", "url": "https://svc.example.com/"}}]
    )
    now = datetime.now(UTC)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        for i in range(1, 101):
            await conn.execute(
                "INSERT INTO results (target_id, region_id, scheduled_at, org_id, status,"
                " latency_ms, dns_ms, connect_ms, tls_ms, ttfb_ms) VALUES"
                " (%s, 'default', %s, %s, 'up', %s, %s, %s, %s, %s)",
                (tid, now - timedelta(minutes=i), owner.org_id, 10.0 * i, i, 2 * i, 3 * i, 4 * i),
            )
        await conn.execute(
            "INSERT INTO results (target_id, region_id, scheduled_at, org_id, status)"
            " VALUES (%s, 'default', %s, %s, 'missed')",
            (tid, now - timedelta(minutes=200), owner.org_id),
        )
    resp = await owner.get(f"{API}/{tid}/performance")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["samples"] == 100
    assert body["dns"] == {"avg": 50.5, "p50": 50.5, "p95": 95.05}
    assert body["ttfb"]["p95"] == 380.2
    assert body["total"]["p50"] == 505.0
    assert body["download"]["p50"] == 303.0  # total - ttfb = 6i
    assert body["response_size"] is None
    assert [r["latency_ms"] for r in body["slowest"]] == [1000.0 - 10 * k for k in range(10)]
    empty = await owner.get(
        f"{API}/{tid}/performance",
        params={"from": "2020-01-01T00:00:00Z", "to": "2020-01-02T00:00:00Z"},
    )
    assert empty.json()["samples"] == 0 and empty.json()["dns"]["p50"] is None
    assert_error(await outsider.get(f"{API}/{tid}/performance"), 404, "TARGET_NOT_FOUND")
    assert_error(await owner.get(f"{API}/{uuid.uuid4()}/performance"), 404, "TARGET_NOT_FOUND")
    bad = await owner.get(
        f"{API}/{tid}/performance",
        params={"from": "2020-01-02T00:00:00Z", "to": "2020-01-01T00:00:00Z"},
    )
    assert_error(bad, 400, "BAD_TIME_RANGE")
