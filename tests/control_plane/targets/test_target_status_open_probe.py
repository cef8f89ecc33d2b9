"""``vigil_target_status_of`` finds each target's open incident by its own index probe (0260):
with statistics taken while nearly every incident was closed, a join on the open ones read them
all and compared every target with each (a mass outage's chunk: 250 targets x thousands open)."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tests.conftest import make_org

TARGETS = 300

MAKE_TARGETS = """
INSERT INTO targets (id, org_id, name, kind, spec, interval_secs, write_source)
SELECT gen_random_uuid(), %(org)s, 't' || g, 'http', '{"url": "https://example.com"}', 60, 'api'
FROM generate_series(1, %(n)s) g
RETURNING id
"""
INCIDENTS = """
INSERT INTO incidents (id, org_id, target_id, started_at, status, ended_at, closed_at)
SELECT gen_random_uuid(), %(org)s, t, now() - interval '1 hour', 'down',
       CASE WHEN %(closed)s THEN now() - interval '30 minutes' END,
       CASE WHEN %(closed)s THEN now() - interval '30 minutes' END
FROM unnest(%(ids)s::uuid[]) t
"""


def scans_of(node: dict[str, Any], relation: str) -> list[dict[str, Any]]:
    found = [node] if node.get("Relation Name") == relation else []
    for child in node.get("Plans", []):
        found += scans_of(child, relation)
    return found


async def test_each_target_probes_its_own_open_incident(db_url: str) -> None:
    org, _ = await make_org(db_url, "Acme")
    async with await psycopg.AsyncConnection.connect(
        db_url, autocommit=True, row_factory=dict_row
    ) as conn:
        ids = [
            r["id"]
            for r in await (await conn.execute(MAKE_TARGETS, {"org": org, "n": TARGETS})).fetchall()
        ]
        # Closed incidents only, then statistics: the planner expects almost none open ...
        for _ in range(3):
            await conn.execute(INCIDENTS, {"org": org, "ids": ids, "closed": True})
        await conn.execute("ANALYZE incidents")
        # ... and then every target's incident opens (the outage), before any new statistics.
        await conn.execute(INCIDENTS, {"org": org, "ids": ids, "closed": False})
        chunk = ids[:250]
        rows = await (
            await conn.execute(
                "EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM vigil_target_status_of(%s)",
                (chunk,),
            )
        ).fetchall()
        plan = rows[0]["QUERY PLAN"]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        scans = scans_of(plan[0]["Plan"], "incidents")
        assert scans, plan
        for scan in scans:
            # An index probe by the target, once per target; never all the open ones at once.
            assert "target_id" in scan.get("Index Cond", ""), scan
            assert scan["Actual Rows"] <= 1, scan
        got = await (
            await conn.execute("SELECT status FROM vigil_target_status_of(%s)", (chunk,))
        ).fetchall()
        assert [r["status"] for r in got] == ["down"] * len(chunk)
