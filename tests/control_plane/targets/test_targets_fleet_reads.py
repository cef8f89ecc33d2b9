"""Current status on target reads, list filters and sort, the tag inventory (issue 16)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from control_plane.domain.results.rollups import refresh_last_24h
from tests.conftest import Persona, assert_error

API = "/api/v1/targets"


def http(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "check": {"type": "http", "url": f"https://{name}.example.com/"}, **extra}


async def make(persona: Persona, items: list[dict[str, Any]]) -> list[str]:
    resp = await persona.post(f"{API}/bulk", json={"targets": items})
    assert resp.status_code == 201, resp.text
    return [t["id"] for t in resp.json()["items"]]


async def report(
    db_url: str,
    target_id: str,
    status: str,
    *,
    at: datetime,
    latency: float | None = 12.5,
    error: str | None = None,
    region: str = "default",
) -> None:
    """A result, what the ingest path keeps of it (the schedule row's last result) and what the
    evaluation keeps (region_states)."""
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        org = await (
            await conn.execute("SELECT org_id FROM targets WHERE id = %s", (target_id,))
        ).fetchone()
        assert org is not None
        await conn.execute(
            "INSERT INTO results (target_id, region_id, scheduled_at, org_id, status, latency_ms,"
            " error) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (target_id, region, at, org[0], status, latency, error),
        )
        await conn.execute(
            "INSERT INTO region_states (target_id, region_id, last_reported_at, last_status,"
            " last_error) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (target_id, region_id) DO"
            " UPDATE SET last_reported_at = EXCLUDED.last_reported_at,"
            " last_status = EXCLUDED.last_status, last_error = EXCLUDED.last_error",
            (target_id, region, at, status, error),
        )
        await conn.execute(
            "UPDATE schedules SET last_at = %s, last_status = %s, last_latency_ms = %s,"
            " last_error = %s WHERE target_id = %s AND region_id = %s",
            (at, status, latency, error, target_id, region),
        )
        hour = at.replace(minute=0, second=0, microsecond=0)
        await conn.execute(
            "INSERT INTO result_rollups_hourly (target_id, region_id, hour, org_id, total, up,"
            " down, degraded, error, missed, samples) VALUES (%s, %s, %s, %s, 4, %s, %s, 0, 0,"
            " 0, 4) ON CONFLICT (target_id, region_id, hour) DO UPDATE SET"
            " total = result_rollups_hourly.total + 4,"
            " up = result_rollups_hourly.up + EXCLUDED.up,"
            " down = result_rollups_hourly.down + EXCLUDED.down",
            (
                target_id,
                region,
                hour,
                org[0],
                4 if status == "up" else 3,
                0 if status == "up" else 1,
            ),
        )
        # What the rollup job does after writing a target's hourly rows.
        conn.row_factory = dict_row
        await refresh_last_24h(conn, {uuid.UUID(target_id)})


async def open_incident(db_url: str, target_id: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO incidents (id, org_id, target_id, started_at, status)"
            " SELECT %s, org_id, id, now(), 'down' FROM targets WHERE id = %s",
            (uuid.uuid4(), target_id),
        )


async def test_status_on_reads(owner: Persona, db_url: str) -> None:
    up, down, fresh, paused = await make(
        owner, [http("up"), http("down"), http("fresh"), http("paused", enabled=False)]
    )
    at = datetime.now(UTC) - timedelta(minutes=5)
    await report(db_url, up, "up", at=at)
    await report(db_url, down, "down", at=at, latency=None, error="connection refused")
    await open_incident(db_url, down)
    got = (await owner.get(f"{API}/{up}")).json()
    assert got["status"] == "up"
    assert got["last_result"]["status"] == "up" and got["last_result"]["latency_ms"] == 12.5
    assert got["last_result"]["region"] == "default"
    assert got["last_24h"] == {"checks": 4, "checks_up": 4, "uptime_pct": 100.0}
    assert got["incident"] is None
    got = (await owner.get(f"{API}/{down}")).json()
    assert got["status"] == "down"
    assert got["last_result"]["error"] == "connection refused"
    assert got["incident"]["status"] == "down" and got["incident"]["state"] == "open"
    assert got["last_24h"]["uptime_pct"] == 75.0
    assert (await owner.get(f"{API}/{fresh}")).json()["status"] == "unknown"
    assert (await owner.get(f"{API}/{paused}")).json()["status"] == "paused"
    await owner.post(f"{API}/{up}/pause")
    assert (await owner.get(f"{API}/{up}")).json()["status"] == "paused"
    await owner.post(f"{API}/{up}/resume")
    assert (await owner.get(f"{API}/{up}")).json()["status"] == "up"
    page = (await owner.get(API, params={"status": "down"})).json()
    assert [t["id"] for t in page["items"]] == [down] and page["total"] == 1
    page = (await owner.get(API, params={"sort": "status"})).json()
    assert [t["id"] for t in page["items"]] == [down, fresh, up, paused]
    page = (await owner.get(API, params={"sort": "-last_checked_at"})).json()
    # Never checked last; ties by id in the same direction.
    assert [t["id"] for t in page["items"]][2:] == [paused, fresh]


async def test_list_filters_and_stable_sort(owner: Persona, db_url: str) -> None:
    ids = await make(owner, [http("b"), http("a"), http("c"), http("a")])
    tcp = await owner.post(
        API, json={"name": "db", "check": {"type": "tcp", "host": "db.example.com", "port": 5432}}
    )
    assert tcp.status_code == 201
    page = (await owner.get(API, params={"kind": "tcp"})).json()
    assert [t["name"] for t in page["items"]] == ["db"] and page["total"] == 1
    page = (await owner.get(API, params={"sort": "name"})).json()
    names = [(t["name"], t["id"]) for t in page["items"]]
    assert names == sorted(names)
    page = (await owner.get(API, params={"sort": "-name", "limit": 2, "offset": 1})).json()
    assert [t["name"] for t in page["items"]] == ["c", "b"] and page["total"] == 5
    page = (await owner.get(API, params={"sort": "created_at"})).json()
    assert [t["id"] for t in page["items"]][:4] == ids
    page = (await owner.get(API, params={"region": "default"})).json()
    assert page["total"] == 5
    page = (await owner.get(API, params={"region": "mars"})).json()
    assert page["total"] == 0 and page["items"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "smtp"}, "/kind"),
        ({"status": "sideways"}, "/status"),
        ({"sort": "url"}, "/sort"),
        ({"sort": "--name"}, "/sort"),
    ],
)
async def test_list_bad_filters(owner: Persona, params: dict[str, str], field: str) -> None:
    assert_error(await owner.get(API, params=params), 400, "INVALID_QUERY_PARAM", field)


async def test_tag_inventory(owner: Persona, outsider: Persona) -> None:
    await make(
        owner,
        [
            http("a", tags=["prod", "web"]),
            http("b", tags=["prod", "db"]),
            http("c", tags=["prod", "web"], enabled=False),
            http("d", tags=["staging"]),
        ],
    )
    await make(outsider, [http("x", tags=["prod", "secret"])])
    page = (await owner.get("/api/v1/tags")).json()
    assert page == {
        "items": [
            {"name": "prod", "count": 3},
            {"name": "web", "count": 2},
            {"name": "db", "count": 1},
            {"name": "staging", "count": 1},
        ],
        "total": 4,
        "limit": 50,
        "offset": 0,
    }
    page = (await owner.get("/api/v1/tags", params={"q": "st"})).json()
    assert page["items"] == [{"name": "staging", "count": 1}] and page["total"] == 1
    page = (await owner.get("/api/v1/tags", params={"limit": 1, "offset": 1})).json()
    assert page["items"] == [{"name": "web", "count": 2}] and page["total"] == 4
    page = (await owner.get("/api/v1/tags", params={"q": "%"})).json()
    assert page["total"] == 0
    assert_error(await owner.get("/api/v1/tags", params={"limit": 0}), 400, "INVALID_QUERY_PARAM")
    out = (await outsider.get("/api/v1/tags")).json()
    assert {t["name"] for t in out["items"]} == {"prod", "secret"}
