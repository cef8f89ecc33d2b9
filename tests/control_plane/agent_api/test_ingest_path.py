"""The ingest hot path (issue 5): every field of a result survives the one-JSON-parameter batch,
lease ids keep their format under the faster MAC, and the next grid point stays exact now that
PostgreSQL inlines it."""

from __future__ import annotations

import base64
import hmac
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from control_plane.domain.agent_api.lease_ids import LeaseClaim, LeaseSigner
from tests.conftest import Persona
from tests.monitoring_helpers import (
    fetch,
    make_agent,
    make_due,
    make_due_on_grid,
    make_target,
    result_for,
)


async def test_every_field_of_a_result_is_stored_as_sent(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    targets = [await make_target(owner, name=f"t{i}") for i in range(3)]
    for t in targets:
        await make_due(db_url, t["id"])
    agent = await make_agent(operator)
    leases = {x["target_id"]: x for x in (await agent.lease()).json()["leases"]}
    assert len(leases) == 3
    awkward = 'quote " backslash \\ newline \n tab \t unicode é ☃ 𝄞 </script>'
    full = result_for(
        leases[targets[0]["id"]],
        "down",
        # Naive times are UTC; an offset is honoured.
        started_at=datetime.now(UTC).replace(tzinfo=None).isoformat(),
        finished_at=(datetime.now(UTC) + timedelta(milliseconds=5))
        .astimezone(ZoneInfo("Asia/Kolkata"))
        .isoformat(),
        latency_ms=0.1,
        status_code=503,
        error=awkward + "x" * 2100,
        error_code="HTTP_STATUS",
        timings={"dns_ms": 1.25, "connect_ms": 2.5, "tls_ms": 3.75, "ttfb_ms": 1e-3},
        details={"assertions": [{"ok": False, "path": '$.a"b'}], "n": 1.5, "nested": {"x": None}},
    )
    bare = {
        k: v
        for k, v in result_for(leases[targets[1]["id"]], "error").items()
        if k not in ("latency_ms", "status_code", "timings", "error")
    }
    empty_details = result_for(leases[targets[2]["id"]], details={})
    resp = await agent.ingest([full, bare, empty_details])
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"accepted": 3, "duplicates": 0, "rejected": []}

    rows = {
        str(r[0]): r[1:]
        for r in await fetch(
            db_url,
            "SELECT target_id, status, started_at, finished_at, latency_ms, status_code, error,"
            " error_code, dns_ms, connect_ms, tls_ms, ttfb_ms, details, scheduled_at, agent_id,"
            " region_id FROM results",
        )
    }
    (status, st, fin, lat, code, err, err_code, dns, conn, tls, ttfb, details, sched, who, reg) = (
        rows[targets[0]["id"]]
    )
    assert status == "down" and code == 503 and err_code == "HTTP_STATUS"
    assert err == (awkward + "x" * 2100)[:2000]
    assert st == datetime.fromisoformat(full["started_at"]).replace(tzinfo=UTC)
    assert fin == datetime.fromisoformat(full["finished_at"])
    # real columns (float4): what was sent, to float4 precision.
    assert (dns, conn, tls) == (1.25, 2.5, 3.75)
    assert lat == pytest.approx(0.1, rel=1e-6) and ttfb == pytest.approx(1e-3, rel=1e-6)
    assert details == full["details"]
    assert sched == datetime.fromisoformat(leases[targets[0]["id"]]["scheduled_at"])
    assert (str(who), reg) == (agent.id, "default")

    status, _st, _fin, lat, code, err, err_code, dns, conn, tls, ttfb, details, *_ = rows[
        targets[1]["id"]
    ]
    assert (status, lat, code, err, err_code, dns, conn, tls, ttfb, details) == (
        "error",
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
    )
    # An empty details object is stored as NULL, as before.
    assert rows[targets[2]["id"]][11] is None


async def test_a_batch_advances_every_schedule_and_marks_every_target(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    targets = [await make_target(owner, name=f"t{i}", interval=30 + i) for i in range(20)]
    await make_due_on_grid(db_url, [t["id"] for t in targets])
    agent = await make_agent(operator)
    leases = (await agent.lease()).json()["leases"]
    assert len(leases) == 20
    await fetch(db_url, "DELETE FROM evaluation_queue")
    resp = await agent.ingest([result_for(x) for x in leases])
    assert resp.json() == {"accepted": 20, "duplicates": 0, "rejected": []}
    rows = await fetch(
        db_url,
        "SELECT s.next_due_at, vigil_next_slot(t.id, t.interval_secs, r.scheduled_at"
        " + interval '1 millisecond'), r.scheduled_at + make_interval(secs => t.interval_secs),"
        " s.leased_by, (SELECT count(*) FROM evaluation_queue q WHERE q.target_id = t.id)"
        " FROM schedules s JOIN targets t ON t.id = s.target_id"
        " JOIN results r ON r.target_id = t.id",
    )
    assert len(rows) == 20
    for next_due, expected, one_interval_on, leased_by, marks in rows:
        assert next_due == expected == one_interval_on  # the next point of the grid
        assert leased_by is None and marks == 1


async def test_next_slot_is_exact_and_inlined(db_url: str) -> None:
    # The function against its original formula (extract(epoch FROM timestamptz)), on random
    # instants, on grid points and a microsecond either side, in two time zones. Grid points are
    # whole milliseconds (the sub-second offset, 0120), never more precise.
    formula = (
        "to_timestamp(ceil((extract(epoch FROM at) - vigil_slot_offset(id, iv)) / iv) * iv"
        " + vigil_slot_offset(id, iv))"
    )
    sample = (
        "WITH r AS (SELECT gen_random_uuid() AS id,"
        " (ARRAY[10, 30, 60, 300, 3600, 86400])[1 + (random() * 5)::int] AS iv,"
        " to_timestamp((random() * 4e9 - 1e9)::bigint)"
        " + (random() * 1e6)::int * interval '1 microsecond' AS at"
        " FROM generate_series(1, 3000)),"
        " g AS (SELECT id, iv, vigil_next_slot(id, iv, at) AS at FROM r),"
        " s AS (SELECT * FROM r UNION ALL SELECT * FROM g"
        " UNION ALL SELECT id, iv, at + interval '1 microsecond' FROM g"
        " UNION ALL SELECT id, iv, at - interval '1 microsecond' FROM g)"
    )
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        for tz in ("UTC", "America/New_York"):
            await conn.execute(f"SET TimeZone = '{tz}'")
            cur = await conn.execute(
                f"{sample} SELECT count(*), count(*) FILTER"
                f" (WHERE vigil_next_slot(id, iv, at) IS DISTINCT FROM {formula}),"
                " count(*) FILTER (WHERE date_trunc('milliseconds', vigil_next_slot(id, iv, at))"
                " <> vigil_next_slot(id, iv, at)),"
                # A grid point is its own next point, and the next one is one interval on.
                " count(*) FILTER (WHERE vigil_next_slot(id, iv, vigil_next_slot(id, iv, at))"
                " <> vigil_next_slot(id, iv, at) OR vigil_next_slot(id, iv,"
                " vigil_next_slot(id, iv, at) + interval '1 millisecond')"
                " <> vigil_next_slot(id, iv, at) + make_interval(secs => iv)) FROM s"
            )
            assert await cur.fetchall() == [(12000, 0, 0, 0)]
    plan = await fetch(
        db_url,
        "EXPLAIN VERBOSE SELECT vigil_next_slot(id, 60, now()) FROM"
        " (SELECT gen_random_uuid() AS id) x",
    )
    text = "\n".join(r[0] for r in plan)
    assert "vigil_next_slot" not in text and "hashtextextended" in text, text


async def test_subsecond_grid_keeps_the_old_second_and_minute(db_url: str) -> None:
    # Schedules of the whole-second grid (before 0120) move onto the new grid by under a second,
    # into the same second and so the same rollup minute: the offset only gained milliseconds.
    old_offset = "((hashtextextended(id::text, 0) & 9223372036854775807) %% iv)"
    old_slot = (
        f"to_timestamp(ceil((extract(epoch FROM at) - {old_offset}) / iv) * iv + {old_offset})"
    )
    rows = await fetch(
        db_url,
        "WITH r AS (SELECT gen_random_uuid() AS id,"
        " (ARRAY[10, 30, 60, 300, 3600])[1 + (random() * 4)::int] AS iv,"
        " now() + (random() * 1e6)::int * interval '1 millisecond' AS at"
        " FROM generate_series(1, 5000)),"
        f" o AS (SELECT id, iv, {old_slot} AS old FROM r),"
        " n AS (SELECT old, vigil_next_slot(id, iv, old) AS new FROM o)"
        " SELECT count(*) FILTER (WHERE new < old OR new >= old + interval '1 second'"
        "   OR date_trunc('second', new) <> old"
        "   OR date_trunc('minute', new) <> date_trunc('minute', old)),"
        " count(DISTINCT extract(milliseconds FROM new)::int %% 1000) FROM n",
    )
    bad, distinct_ms = rows[0]
    assert bad == 0
    # The milliseconds are spread over the second, not all at .000.
    assert distinct_ms >= 900


def test_lease_ids_keep_their_format_and_refuse_what_is_not_theirs() -> None:
    signer = LeaseSigner(b"k" * 32)
    now = datetime(2030, 1, 1, 0, 0, 30, 250, tzinfo=UTC)
    claim = LeaseClaim(uuid.uuid4(), uuid.uuid4(), "eu-west", now, now + timedelta(seconds=40))
    lease_id = signer.issue(claim)
    raw = base64.urlsafe_b64decode(lease_id + "=" * (-len(lease_id) % 4))
    # Still HMAC-SHA256 of the payload under the derived key, truncated to 16 bytes.
    key = hmac.new(b"k" * 32, b"vigil lease ids v1", "sha256").digest()
    assert raw[-16:] == hmac.digest(key, raw[:-16], "sha256")[:16]
    assert signer.verify(lease_id) == claim
    assert signer.verify(lease_id) == claim  # the cached agent id gives the same claim
    bad: list[Any] = [
        "",
        "!!!",
        lease_id + "é",
        lease_id[:-3],
        lease_id[:10] + ("A" if lease_id[10] != "A" else "B") + lease_id[11:],
        base64.urlsafe_b64encode(raw[:-16] + bytes(16)).decode(),
    ]
    for value in bad:
        assert signer.verify(value) is None, value
    assert LeaseSigner(b"x" * 32).verify(lease_id) is None


async def test_a_nul_character_in_a_result_is_stored_marked_not_a_500(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    # A result may quote what a server sent (a body excerpt, a DNS TXT record): PostgreSQL can
    # hold no NUL, so it is stored as U+FFFD rather than failing the batch (and the agent
    # re-sending it forever).
    targets = [await make_target(owner, name=f"t{i}") for i in range(2)]
    for t in targets:
        await make_due(db_url, t["id"])
    agent = await make_agent(operator)
    leases = {x["target_id"]: x for x in (await agent.lease()).json()["leases"]}
    with_nul = result_for(
        leases[targets[0]["id"]],
        "down",
        error="body\x00excerpt",
        error_code="ASSERTION_FAILED",
        details={"assertions": [{"actual": "a\x00b", "passed": False}], "k\x00": 1},
    )
    # A literal backslash-u0000 (six characters) is text, not a NUL: kept as sent.
    literal = result_for(leases[targets[1]["id"]], "down", error="literally \\u0000")
    resp = await agent.ingest([with_nul, literal])
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    rows = {
        str(r[0]): r[1:]
        for r in await fetch(db_url, "SELECT target_id, error, details FROM results")
    }
    assert rows[targets[0]["id"]] == (
        "body\ufffdexcerpt",
        {"assertions": [{"actual": "a\ufffdb", "passed": False}], "k\ufffd": 1},
    )
    assert rows[targets[1]["id"]] == ("literally \\u0000", None)
