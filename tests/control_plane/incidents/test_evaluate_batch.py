"""The batch path of the incident engine: many targets per call, a chunk per transaction, over
the real database (results written as ingest stores them, marks as ingest leaves them)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from psycopg.rows import dict_row

from control_plane.domain.incidents import engine as evaluate
from control_plane.domain.incidents.engine import evaluate_batch, evaluate_target
from control_plane.domain.incidents.jobs import evaluate_targets
from tests.conftest import Persona
from tests.control_plane.incidents.test_incidents import incidents
from tests.monitoring_helpers import ensure_region, fetch, make_target


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(
        db_url, autocommit=True, row_factory=dict_row
    ) as c:
        yield c


async def add_results(db_url: str, target_id: str, region: str, statuses: list[str]) -> None:
    """Stores one result per status in consecutive minute slots (oldest first, after any the
    region already has, else from an hour ago) and marks the target, as ingest does."""
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as c:
        await c.execute(
            "INSERT INTO results (target_id, region_id, scheduled_at, org_id, status, error)"
            " SELECT t.id, %(region)s, b.base + make_interval(mins => s.i::int), t.org_id,"
            "  s.status, CASE WHEN s.status = 'down' THEN 'boom ' || s.i END"
            " FROM targets t, unnest(%(statuses)s::text[]) WITH ORDINALITY AS s(status, i),"
            "  (SELECT coalesce(max(scheduled_at), date_trunc('minute', now()) - interval '1 hour')"
            "   AS base FROM results WHERE target_id = %(id)s AND region_id = %(region)s) b"
            " WHERE t.id = %(id)s",
            {"region": region, "statuses": statuses, "id": uuid.UUID(target_id)},
        )
        await c.execute(
            "INSERT INTO evaluation_queue (target_id) VALUES (%s)"
            " ON CONFLICT (target_id) DO UPDATE SET dirty_at = clock_timestamp()",
            (uuid.UUID(target_id),),
        )


async def marked(db_url: str) -> set[str]:
    return {str(r[0]) for r in await fetch(db_url, "SELECT target_id FROM evaluation_queue")}


async def states(db_url: str, target_id: str) -> dict[str, tuple[Any, ...]]:
    rows = await fetch(
        db_url,
        "SELECT region_id, consecutive_bad, consecutive_good, failing, last_status,"
        " (SELECT count(*) FROM results r WHERE r.target_id = s.target_id"
        "  AND r.region_id = s.region_id AND r.scheduled_at > s.evaluated_to)"
        " FROM region_states s WHERE target_id = %s",
        uuid.UUID(target_id),
    )
    return {r[0]: tuple(r[1:]) for r in rows}


async def test_many_targets_in_one_call_open_close_and_stay(
    owner: Persona, app: Litestar, db_url: str, conn: psycopg.AsyncConnection[Any]
) -> None:
    # Seven targets, one region ("default"), confirmations 2; every one has an earlier history.
    kinds = ["opens", "opens", "closes", "stays_down", "stays_up", "stays_up", "recovering"]
    targets = {
        k + str(i): await make_target(owner, region_policy="any", alert_confirmations=2)
        for i, k in enumerate(kinds)
    }
    history = {
        "opens": ["up", "up"],
        "closes": ["down", "down"],
        "stays_down": ["down", "down"],
        "stays_up": ["up"],
        "recovering": ["down", "down"],
    }
    for name, t in targets.items():
        await add_results(db_url, t["id"], "default", history[name.rstrip("0123456789")])
    # Set the stage target by target, through the single-target path.
    for t in targets.values():
        await evaluate_target(conn, uuid.UUID(t["id"]))
    open_before = {name for name, t in targets.items() if await incidents(owner, t["id"]) != []}
    assert open_before == {"closes2", "stays_down3", "recovering6"}

    now = {
        "opens": ["down", "down"],
        "closes": ["up", "up"],
        "stays_down": ["down"],
        "stays_up": ["up", "degraded"],
        "recovering": ["up"],  # one good result of two: still failing, still open
    }
    for name, t in targets.items():
        await add_results(db_url, t["id"], "default", now[name.rstrip("0123456789")])
    ids = [uuid.UUID(t["id"]) for t in targets.values()]
    # Chunks of three: the seven targets span three transactions.
    outcomes = await evaluate_batch(conn, ids, chunk=3)

    assert list(outcomes) == ids
    assert all(o.evaluated for o in outcomes.values())
    by_name = {name: outcomes[uuid.UUID(t["id"])] for name, t in targets.items()}
    assert {n for n, o in by_name.items() if o.opened} == {"opens0", "opens1"}
    assert {n for n, o in by_name.items() if o.closed} == {"closes2"}
    assert by_name["stays_up4"].results == 2 and by_name["stays_down3"].results == 1
    for name, t in targets.items():
        (state,) = (await states(db_url, t["id"])).values()
        assert state[-1] == 0, name  # every new result folded
        items = await incidents(owner, t["id"])
        ongoing = [i for i in items if i["ended_at"] is None]
        should_be_open = name in {"opens0", "opens1", "stays_down3", "recovering6"}
        assert len(ongoing) == (1 if should_be_open else 0), name
    (down,) = await incidents(owner, targets["stays_down3"]["id"])
    assert down["ended_at"] is None
    opened = (await incidents(owner, targets["opens0"]["id"]))[0]
    assert opened["error_sample"] == "boom 2"  # the latest bad result
    assert await marked(db_url) == set()
    # Re-running the whole batch changes nothing.
    again = await evaluate_batch(conn, ids, chunk=3)
    assert all(
        o.evaluated and o.results == 0 and not o.opened and not o.closed for o in again.values()
    )


async def test_a_target_another_worker_holds_is_skipped_and_keeps_its_mark(
    owner: Persona, app: Litestar, db_url: str, conn: psycopg.AsyncConnection[Any]
) -> None:
    held = await make_target(owner, region_policy="any", alert_confirmations=1)
    free = await make_target(owner, region_policy="any", alert_confirmations=1)
    for t in (held, free):
        await add_results(db_url, t["id"], "default", ["down"])
    async with await psycopg.AsyncConnection.connect(db_url) as other:
        # Another worker's evaluation of ``held`` in flight: it holds the target's lock.
        await other.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s::text, 7331))",
            (uuid.UUID(held["id"]),),
        )
        changes = await evaluate_targets(
            {"resources": app.state.resources}, [held["id"], free["id"]]
        )
        assert changes == 1
        assert await marked(db_url) == {held["id"]}
        assert await states(db_url, held["id"]) == {}
        assert len(await incidents(owner, free["id"])) == 1
        skipped = await evaluate_target(conn, uuid.UUID(held["id"]))
        assert not skipped.evaluated and skipped.results == 0
        await other.rollback()
    # The lock is gone: the next evaluation (the sweep's) takes it and clears the mark.
    outcome = await evaluate_target(conn, uuid.UUID(held["id"]))
    assert outcome.evaluated and outcome.results == 1 and outcome.opened
    assert await marked(db_url) == set()


async def test_results_in_several_regions_fold_per_region_in_slot_order(
    owner: Persona,
    operator: Persona,
    app: Litestar,
    db_url: str,
    conn: psycopg.AsyncConnection[Any],
) -> None:
    for region in ("eu-west", "us-east", "ap-south"):
        await ensure_region(operator, region)
    target = await make_target(owner, region_policy="majority", alert_confirmations=2)
    resp = await owner.put(
        f"/api/v1/targets/{target['id']}/regions",
        json={"regions": ["ap-south", "eu-west", "us-east"]},
    )
    assert resp.status_code == 200, resp.text
    steady = await make_target(owner, region_policy="majority", alert_confirmations=2)
    await add_results(db_url, target["id"], "eu-west", ["up", "down", "down"])
    await add_results(db_url, target["id"], "us-east", ["down", "up", "down"])
    await add_results(db_url, target["id"], "ap-south", ["up", "error", "down"])
    await add_results(db_url, steady["id"], "default", ["up"])
    outcomes = await evaluate_batch(conn, [uuid.UUID(target["id"]), uuid.UUID(steady["id"])])
    first = outcomes[uuid.UUID(target["id"])]
    assert first.results == 9 and first.opened is None  # only eu-west is failing: 1 of 3
    assert await states(db_url, target["id"]) == {
        "eu-west": (2, 0, True, "down", 0),
        "us-east": (1, 0, False, "down", 0),
        "ap-south": (1, 0, False, "down", 0),  # the error left the count alone
    }
    await add_results(db_url, target["id"], "us-east", ["down"])
    second = await evaluate_batch(conn, [uuid.UUID(target["id"])])
    assert second[uuid.UUID(target["id"])].results == 1
    (inc,) = await incidents(owner, target["id"])
    assert inc["regions"] == ["eu-west", "us-east"]  # two of three: a majority
    assert outcomes[uuid.UUID(steady["id"])].results == 1
    assert await incidents(owner, steady["id"]) == []


async def test_the_per_target_cap_leaves_the_rest_for_the_next_evaluation(
    owner: Persona,
    operator: Persona,
    app: Litestar,
    db_url: str,
    conn: psycopg.AsyncConnection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await ensure_region(operator, "eu-west")
    target = await make_target(owner, region_policy="any", alert_confirmations=3)
    resp = await owner.put(
        f"/api/v1/targets/{target['id']}/regions", json={"regions": ["default", "eu-west"]}
    )
    assert resp.status_code == 200, resp.text
    other = await make_target(owner, region_policy="any", alert_confirmations=3)
    await add_results(db_url, target["id"], "default", ["down"] * 4)
    await add_results(db_url, target["id"], "eu-west", ["up"] * 3)
    await add_results(db_url, other["id"], "default", ["up"] * 4)
    monkeypatch.setattr(evaluate, "BATCH", 5)
    tid, oid = uuid.UUID(target["id"]), uuid.UUID(other["id"])
    first = await evaluate_batch(conn, [tid, oid])
    # Region order, then slot order: all four of "default", one of "eu-west"; the cap is per
    # target, so the other target in the same statement gets its own five.
    assert first[tid].results == 5 and first[oid].results == 4
    assert await states(db_url, target["id"]) == {
        "default": (4, 0, True, "down", 0),
        "eu-west": (0, 1, False, "up", 2),
    }
    assert first[tid].opened is not None
    second = await evaluate_batch(conn, [tid, oid])
    assert second[tid].results == 2 and second[oid].results == 0
    assert (await states(db_url, target["id"]))["eu-west"] == (0, 3, False, "up", 0)


async def test_a_mark_of_a_deleted_target_is_cleared(
    owner: Persona, app: Litestar, db_url: str, conn: psycopg.AsyncConnection[Any]
) -> None:
    target = await make_target(owner)
    await add_results(db_url, target["id"], "default", ["up"])
    gone = uuid.uuid4()
    await fetch(db_url, "INSERT INTO evaluation_queue (target_id) VALUES (%s)", gone)
    outcomes = await evaluate_batch(conn, [gone, uuid.UUID(target["id"])])
    assert outcomes[gone].evaluated and outcomes[gone].results == 0
    assert outcomes[uuid.UUID(target["id"])].results == 1
    assert await marked(db_url) == set()


async def test_concurrent_batches_over_the_same_targets_fold_each_result_once(
    owner: Persona, app: Litestar, db_url: str
) -> None:
    targets = [
        await make_target(owner, region_policy="any", alert_confirmations=1) for _ in range(8)
    ]
    for t in targets:
        await add_results(db_url, t["id"], "default", ["up", "down"])
    ids = [uuid.UUID(t["id"]) for t in targets]

    async def batch(order: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
        async with await psycopg.AsyncConnection.connect(
            db_url, autocommit=True, row_factory=dict_row
        ) as c:
            return await evaluate_batch(c, order, chunk=3)

    runs = await asyncio.gather(*(batch(ids if i % 2 else ids[::-1]) for i in range(4)))
    for tid in ids:
        assert sum(run[tid].results for run in runs) == 2
        assert sum(1 for run in runs if run[tid].opened) == 1
    for t in targets:
        assert len(await incidents(owner, t["id"])) == 1


async def test_a_mark_ingest_is_restamping_is_left_without_waiting(
    owner: Persona, app: Litestar, db_url: str, conn: psycopg.AsyncConnection[Any]
) -> None:
    busy = await make_target(owner, region_policy="any", alert_confirmations=1)
    calm = await make_target(owner, region_policy="any", alert_confirmations=1)
    for t in (busy, calm):
        await add_results(db_url, t["id"], "default", ["up"])
    async with await psycopg.AsyncConnection.connect(db_url) as ingest:
        # An ingest transaction re-marking ``busy`` (a newer result on its way) holds the row.
        await ingest.execute(
            "UPDATE evaluation_queue SET dirty_at = clock_timestamp() WHERE target_id = %s",
            (uuid.UUID(busy["id"]),),
        )
        ids = [uuid.UUID(busy["id"]), uuid.UUID(calm["id"])]
        outcomes = await asyncio.wait_for(evaluate_batch(conn, ids), timeout=10)
        assert [o.results for o in outcomes.values()] == [1, 1]
        await ingest.commit()
    # The re-stamped mark stays for the sweep; the other one is gone.
    assert await marked(db_url) == {busy["id"]}


class CountingConnection(psycopg.AsyncConnection[Any]):
    """A real connection that counts the statements sent through ``execute``."""

    statements = 0

    async def execute(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.statements += 1
        return await super().execute(*args, **kwargs)


async def test_a_mass_outage_opens_a_chunk_of_incidents_in_a_few_statements(
    owner: Persona, app: Litestar, db_url: str
) -> None:
    # 40 targets go down at once, each bound to a channel, their org subscribed to events: the
    # chunk's incidents, outbox rows and events are written set-based (it was four statements
    # per incident: the insert, the outbox's, two events').
    n = 40
    targets = [
        await make_target(owner, region_policy="any", alert_confirmations=1) for _ in range(n)
    ]
    ids = [uuid.UUID(t["id"]) for t in targets]
    channel, webhook = uuid.uuid4(), uuid.uuid4()
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as c:
        await c.execute(
            "INSERT INTO channels (id, org_id, name, kind) VALUES (%s, %s, 'hook', 'webhook')",
            (channel, owner.org_id),
        )
        await c.execute(
            "INSERT INTO target_alerts (target_id, channel_id, position)"
            " SELECT t, %s, 0 FROM unnest(%s::uuid[]) AS t",
            (channel, ids),
        )
        await c.execute(
            "INSERT INTO webhooks (id, org_id, url, events) VALUES"
            " (%s, %s, 'https://example.com/events', ARRAY['monitor.down', 'incident.opened'])",
            (webhook, owner.org_id),
        )
    for t in targets:
        await add_results(db_url, t["id"], "default", ["down"])

    async with await CountingConnection.connect(
        db_url, autocommit=True, row_factory=dict_row
    ) as conn:
        outcomes = await evaluate_batch(conn, ids)
        statements = conn.statements

    assert all(o.opened and o.status_after == "down" for o in outcomes.values())
    assert statements <= 16, statements
    rows = await fetch(
        db_url,
        "SELECT i.target_id, i.status, i.regions, i.check_count, i.cause, i.in_maintenance,"
        " (SELECT count(*) FROM notifications n WHERE n.incident_id = i.id"
        "  AND n.channel_id = %s AND n.kind = 'open')"
        " FROM incidents i WHERE i.ended_at IS NULL",
        channel,
    )
    assert sorted(r[0] for r in rows) == sorted(ids)
    assert {(r[1], tuple(r[2]), *r[3:]) for r in rows} == {
        ("down", ("default",), 1, "boom 1", False, 1)
    }
    events = await fetch(
        db_url,
        "SELECT event, subject_id, event_id, created_at FROM notifications WHERE kind = 'event'"
        " ORDER BY created_at",
    )
    assert len(events) == 2 * n and len({e[2] for e in events}) == 2 * n  # an id each
    for tid in ids:  # per target, monitor.down before incident.opened
        assert [e[0] for e in events if e[1] == tid] == ["monitor.down", "incident.opened"]


async def test_clear_markers_deletes_by_address_whatever_the_plan_expects(db_url: str) -> None:
    """Its rows go by their addresses (a TID scan): joined back to the queue, the plan made while
    the queue was nearly empty compared every mark with every cleared one (142 ms a chunk)."""
    ids = [uuid.uuid4() for _ in range(3000)]
    async with await psycopg.AsyncConnection.connect(
        db_url, autocommit=True, row_factory=dict_row
    ) as c:
        await c.execute("ANALYZE evaluation_queue")  # statistics of an empty queue
        await c.execute(
            "INSERT INTO evaluation_queue (target_id) SELECT unnest(%s::uuid[])", (ids,)
        )
        stamps = {
            r["target_id"]: r["dirty_at"]
            for r in await (await c.execute("SELECT * FROM evaluation_queue")).fetchall()
        }
        # The first 250 as evaluated; the 10th was re-stamped since (a newer result): it stays.
        chunk = ids[:250]
        stamps[chunk[9]] = stamps[chunk[9]] - timedelta(seconds=1)
        params = {"ids": chunk, "dirty_at": [stamps[t] for t in chunk]}
        plan = "\n".join(
            r["QUERY PLAN"]
            for r in await (
                await c.execute("EXPLAIN " + evaluate.Q.clear_markers, params)
            ).fetchall()
        )
        assert "Tid Scan on evaluation_queue q" in plan, plan
        await c.execute(evaluate.Q.clear_markers, params)
    assert await marked(db_url) == {str(t) for t in [chunk[9], *ids[250:]]}
    assert "Nested Loop" not in plan, plan
