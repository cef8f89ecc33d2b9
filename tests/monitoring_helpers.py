"""Helpers for tests of the monitoring loop: agents, targets and slots made due on demand."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from tests.conftest import Persona


@dataclass(eq=False)
class AgentHandle:
    """An agent created through the operator API, calling /api/agent with its token."""

    persona: Persona
    id: str
    region: str
    token: str

    async def lease(self, max_n: int = 50, wait_ms: int = 0) -> Any:
        return await self.persona.post("/api/agent/lease", json={"max": max_n, "wait_ms": wait_ms})

    async def ingest(self, results: list[dict[str, Any]]) -> Any:
        return await self.persona.post("/api/agent/ingest", json={"results": results})


async def ensure_region(operator: Persona, region: str) -> None:
    if region == "default":
        return
    resp = await operator.post(
        "/operator/regions", json={"id": region, "name": region.title(), "location": "test"}
    )
    assert resp.status_code in (201, 409), resp.text


async def make_agent(operator: Persona, region: str = "default", name: str = "a") -> AgentHandle:
    await ensure_region(operator, region)
    resp = await operator.post("/operator/agents", json={"name": name, "region": region})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    persona = Persona(operator.client, {"Authorization": f"Bearer {body['token']}"})
    return AgentHandle(persona, body["id"], region, body["token"])


async def make_target(
    owner: Persona, url: str = "https://example.com/health", **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "t", "check": {"type": "http", "url": url}, "interval": 60}
    body.update(fields)
    resp = await owner.post("/api/v1/targets", json=body)
    assert resp.status_code == 201, resp.text
    target: dict[str, Any] = resp.json()
    return target


async def make_due(
    db_url: str, target_id: str, seconds_ago: float = 1.0, *, on_grid: bool = False
) -> datetime:
    """Make the target's slot due exactly ``seconds_ago`` in the past, or with ``on_grid`` at a
    point of its grid. Off the grid is the default because an agent is never leased a slot older
    than its interval, and the latest grid point of a 60 s target may be 59 s old. On the grid,
    the latest point at least ``seconds_ago`` old is taken unless it is within 5 s of falling out
    of the lease window; then the next point is taken and this waits until it is due."""
    ago = "date_trunc('milliseconds', now()) - make_interval(secs => %(ago)s)"
    at = ago
    if on_grid:
        upcoming = f"vigil_next_slot(t.id, t.interval_secs, {ago})"
        at = (
            f"CASE WHEN {upcoming} - now() > interval '5 seconds'"
            f" THEN {upcoming} - make_interval(secs => t.interval_secs) ELSE {upcoming} END"
        )
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute(
            f"UPDATE schedules s SET next_due_at = {at}, leased_by = NULL,"
            " lease_expires_at = NULL FROM targets t WHERE t.id = s.target_id"
            " AND s.target_id = %(id)s RETURNING s.next_due_at, s.next_due_at - now()",
            {"ago": seconds_ago, "id": uuid.UUID(target_id)},
        )
        row = await cur.fetchone()
        assert row is not None, "target has no schedule"
        due: datetime = row[0]
        if on_grid and row[1].total_seconds() > 0:
            await asyncio.sleep(row[1].total_seconds() + 0.01)
        return due


async def fetch(db_url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute(query, params)
        return await cur.fetchall() if cur.description else []


def result_for(lease: dict[str, Any], status: str = "up", **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    body: dict[str, Any] = {
        "lease_id": lease["lease_id"],
        "target_id": lease["target_id"],
        "scheduled_at": lease["scheduled_at"],
        "started_at": now,
        "finished_at": now,
        "status": status,
        "latency_ms": 12.5,
        "status_code": 200 if status == "up" else 503,
        "timings": {"dns_ms": 1.0, "connect_ms": 2.0, "ttfb_ms": 8.0, "total_ms": 12.5},
    }
    if status != "up":
        body["error"] = "expected status 200, got 503"
    body.update(extra)
    return body
