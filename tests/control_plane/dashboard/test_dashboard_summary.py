"""GET /api/v1/dashboard/summary: the reference's shape, per org, cached 5 s in Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from tests.conftest import Persona
from tests.control_plane.targets.test_targets_fleet_reads import make, open_incident, report

PATH = "/api/v1/dashboard/summary"


def http(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "check": {"type": "http", "url": f"https://{name}.example.com/"}, **extra}


async def flush(settings: Any) -> None:
    from redis.asyncio import Redis

    r = Redis.from_url(settings.redis.url)
    try:
        keys = [k async for k in r.scan_iter(f"{settings.redis.prefix}dashboard:*")]
        if keys:
            await r.delete(*keys)
    finally:
        await r.aclose()


async def test_summary_shape_counts_and_cache(
    owner: Persona, outsider: Persona, db_url: str, settings: Any
) -> None:
    up, down, _fresh, _off = await make(
        owner, [http("up"), http("down"), http("fresh"), http("off", enabled=False)]
    )
    await make(outsider, [http("x")])
    at = datetime.now(UTC) - timedelta(minutes=5)
    await report(db_url, up, "up", at=at)
    await report(db_url, down, "down", at=at)
    await open_incident(db_url, down)
    await flush(settings)
    resp = await owner.get(PATH)
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == "private, max-age=5"
    assert resp.json() == {
        "targets": {"total": 4, "enabled": 3, "disabled": 1},
        "current_status": {"up": 1, "down": 1, "degraded": 0, "error": 0, "unknown": 2},
        "last_24h": {"checks_total": 8, "checks_up": 7, "uptime_pct": 87.5, "incidents": 1},
        "system": {
            "in_flight_checks": 0,
            "result_queue_depth": 0,
            "dropped_results_last_5m": 0,
            "circuit_breakers_open": 0,
        },
    }
    # The other org never sees this entry.
    other = (await outsider.get(PATH)).json()
    assert other["targets"]["total"] == 1 and other["current_status"]["unknown"] == 1
    # Cached: a change within 5 s is not seen yet; once the entry is gone it is.
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("DELETE FROM targets WHERE id = %s", (up,))
    assert (await owner.get(PATH)).json()["targets"]["total"] == 4
    await flush(settings)
    assert (await owner.get(PATH)).json()["targets"]["total"] == 3


async def test_summary_needs_auth(anon: Persona) -> None:
    assert (await anon.get(PATH)).status_code == 401
