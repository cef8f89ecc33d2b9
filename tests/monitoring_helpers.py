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
    point of its grid (``make_due_on_grid``). Off the grid is the default because an agent is
    never leased a slot older than its interval, and the latest grid point of a 60 s target may
    be 59 s old."""
    if on_grid:
        return (await make_due_on_grid(db_url, [target_id]))[0]
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute(
            "UPDATE schedules s SET next_due_at = date_trunc('milliseconds', now())"
            " - make_interval(secs => %(ago)s), leased_by = NULL, lease_expires_at = NULL"
            " WHERE s.target_id = %(id)s RETURNING s.next_due_at",
            {"ago": seconds_ago, "id": uuid.UUID(target_id)},
        )
        row = await cur.fetchone()
        assert row is not None, "target has no schedule"
        due: datetime = row[0]
        return due


async def make_due_on_grid(
    db_url: str, target_ids: list[str], margin: float = 3.0
) -> list[datetime]:
    """Put every target's slot at a point of its grid, all of them due and leasable together.

    A target's latest grid point stays leasable until its next one (a slot is never leased once
    an interval old). Each target gets its latest point unless the next one is within
    ``margin`` seconds; then it gets the next one, and this waits until that is due. Waiting
    may bring another target's latest point within ``margin`` of falling out of the window, so
    the placement is done again until every slot has ``margin`` seconds of leasable life left.
    One statement for all targets: a slow machine does not age the first target's slot while
    the others are set up."""
    ids = [uuid.UUID(t) for t in target_ids]
    upcoming = "vigil_next_slot(t.id, t.interval_secs, date_trunc('milliseconds', now()))"
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        for _ in range(20):
            cur = await conn.execute(
                f"UPDATE schedules s SET next_due_at = CASE"
                f" WHEN {upcoming} - now() > make_interval(secs => %(m)s)"
                f" THEN {upcoming} - make_interval(secs => t.interval_secs) ELSE {upcoming} END,"
                " leased_by = NULL, lease_expires_at = NULL FROM targets t"
                " WHERE t.id = s.target_id AND s.target_id = ANY(%(ids)s)"
                " RETURNING s.target_id, s.next_due_at,"
                " extract(epoch FROM s.next_due_at - now())::float8",
                {"m": margin, "ids": ids},
            )
            rows = await cur.fetchall()
            assert len(rows) == len(ids), "a target has no schedule"
            wait = max(r[2] for r in rows)
            if wait > 0:
                await asyncio.sleep(wait + 0.01)
            cur = await conn.execute(
                "SELECT bool_and(s.next_due_at <= now() AND s.next_due_at"
                " + make_interval(secs => t.interval_secs) - now() > make_interval(secs => %(m)s))"
                " FROM schedules s JOIN targets t ON t.id = s.target_id"
                " WHERE s.target_id = ANY(%(ids)s)",
                {"m": margin, "ids": ids},
            )
            ok = await cur.fetchone()
            if ok is not None and ok[0]:
                due = {str(r[0]): r[1] for r in rows}
                return [due[t] for t in target_ids]
    raise AssertionError("could not place the slots on their grids together")


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
