"""Heartbeat (push) monitors through the real endpoint, the real sweep and the incident engine."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from arq.connections import ArqRedis
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from control_plane.app import create_app
from control_plane.core.queue import queue_name
from control_plane.core.state import Resources
from control_plane.db.pool import make_pool
from control_plane.domain.heartbeats.jobs import sweep_overdue
from control_plane.domain.incidents.jobs import evaluate_targets
from control_plane.security.rotation import SealedColumn, rotate_keys
from control_plane.security.sealing import Sealer
from control_plane.settings import Settings
from control_plane.worker.main import sweep
from probe_agent.checks import run_lease
from shared.checks import HeartbeatCheck
from tests.conftest import Persona, assert_error, make_org
from tests.monitoring_helpers import fetch, make_agent, make_due, make_target
from tests.probe_agent.helpers import make_lease
from tests.stack import SEALING_KEYS, TOKEN_KEY


async def make_heartbeat(owner: Persona, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "nightly backup",
        "check": {"type": "heartbeat", "grace": 30},
        "interval": 60,
    }
    body.update(fields)
    resp = await owner.post("/api/v1/targets", json=body)
    assert resp.status_code == 201, resp.text
    target: dict[str, Any] = resp.json()
    return target


def ping_url(target: dict[str, Any]) -> str:
    url: str = target["heartbeat"]["url"]
    return url


async def results(owner: Persona, target_id: str) -> list[dict[str, Any]]:
    """The target's results, oldest first."""
    resp = await owner.get(f"/api/v1/targets/{target_id}/results")
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items[::-1]


async def incidents(owner: Persona, target_id: str) -> list[dict[str, Any]]:
    resp = await owner.get(f"/api/v1/targets/{target_id}/incidents")
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def overdue(db_url: str, target_id: str, seconds_ago: int) -> None:
    """Pretend the current period began ``seconds_ago`` seconds ago (at creation, or at the last
    signal): its deadline is then interval + grace after that."""
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute(
            "UPDATE heartbeats h SET due_at = vigil_heartbeat_deadline(t.interval_secs, t.spec,"
            "                                   now() - make_interval(secs => %(ago)s))"
            " FROM targets t WHERE t.id = h.id AND h.id = %(id)s",
            {"ago": seconds_ago, "id": uuid.UUID(target_id)},
        )
        assert cur.rowcount == 1


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[dict[str, Any]]:
    """A worker's job context, built as the worker builds it, in the test's own event loop (the
    app under test serves from another one)."""
    pool = make_pool(settings.database)
    await pool.open(wait=True)
    res = Resources(
        settings=settings,
        db=pool,
        redis=Redis.from_url(settings.redis.url),
        sealer=Sealer(settings.security.sealing_keys, settings.security.primary_key_id),
        queue=ArqRedis.from_url(settings.redis.url),
    )
    try:
        yield {"resources": res}
    finally:
        assert res.queue is not None
        await res.queue.aclose()
        await res.redis.aclose()
        await pool.close()


async def evaluate(worker: dict[str, Any], target_id: str) -> None:
    await evaluate_targets(worker, [target_id])


async def test_a_heartbeat_target_gets_a_ping_url_shown_on_create_and_on_reads(
    owner: Persona,
) -> None:
    target = await make_heartbeat(owner)
    assert target["check"] == {"type": "heartbeat", "grace": 30}
    assert target["regions"] == []
    hb = target["heartbeat"]
    assert hb["token"].startswith("hb_")
    # Absolute, so that it works pasted into a crontab: under the origin the request came to.
    assert hb["url"] == f"http://testserver.local/api/heartbeat/{hb['token']}"
    assert hb["last_ping_at"] is None and hb["last_start_at"] is None
    expected_by = datetime.fromisoformat(hb["expected_by"])
    created = datetime.fromisoformat(target["created_at"])
    assert expected_by - created >= timedelta(seconds=89)  # interval 60 + grace 30
    # Re-copyable: every read shows the same token; other kinds carry no heartbeat at all.
    got = (await owner.get(f"/api/v1/targets/{target['id']}")).json()
    assert got["heartbeat"]["token"] == hb["token"]
    other = await make_target(owner)
    assert "heartbeat" not in other
    listed = {t["id"]: t for t in (await owner.get("/api/v1/targets")).json()["items"]}
    assert listed[target["id"]]["heartbeat"]["url"] == hb["url"]
    assert "heartbeat" not in listed[other["id"]]


async def test_the_ping_url_is_under_the_configured_public_url(settings: Settings) -> None:
    public = replace(settings, api=replace(settings.api, public_url="https://vigil.example.com"))
    async with AsyncTestClient(app=create_app(public)) as client:
        org_id, token = await make_org(settings.database.url, "Acme")
        owner = Persona(client, {"Authorization": f"Bearer {token}"}, org_id)
        hb = (await make_heartbeat(owner))["heartbeat"]
    assert hb["url"] == f"https://vigil.example.com/api/heartbeat/{hb['token']}"


async def test_defaults_and_validation_of_the_heartbeat_spec(owner: Persona) -> None:
    resp = await owner.post(
        "/api/v1/targets", json={"name": "cron", "check": {"type": "heartbeat"}}
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["check"] == {"type": "heartbeat", "grace": 60}
    assert resp.json()["interval"] == 60
    for grace in (0, 9, 7 * 86400 + 1):
        resp = await owner.post(
            "/api/v1/targets",
            json={"name": "cron", "check": {"type": "heartbeat", "grace": grace}},
        )
        assert_error(resp, 400, "INVALID_HEARTBEAT_PARAMS", "/check/grace")
    resp = await owner.post(
        "/api/v1/targets", json={"name": "cron", "check": {"type": "heartbeat", "grace": "60"}}
    )
    assert_error(resp, 400, "INVALID_HEARTBEAT_PARAMS", "/check/grace")
    resp = await owner.post(
        "/api/v1/targets",
        json={"name": "cron", "check": {"type": "heartbeat", "url": "https://example.com"}},
    )
    assert_error(resp, 400, "UNKNOWN_FIELD", "/check/url")
    resp = await owner.post(
        "/api/v1/targets",
        json={"name": "cron", "check": {"type": "heartbeat"}, "region_policy": {"count": 2}},
    )
    assert_error(resp, 422, "INVALID_REGION_POLICY", "/region_policy")


async def test_a_ping_records_an_up_result_without_any_credentials(
    owner: Persona, anon: Persona, db_url: str
) -> None:
    target = await make_heartbeat(owner)
    resp = await anon.get(ping_url(target))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"ok": True}
    assert resp.headers["cache-control"] == "no-store"
    assert (await anon.post(ping_url(target), content=b"job output")).json() == {"ok": True}
    rows = await results(owner, target["id"])
    assert [(r["status"], r["region"]) for r in rows] == [("up", "heartbeat"), ("up", "heartbeat")]
    assert rows[0]["latency_ms"] is None and rows[0]["error"] is None
    assert rows[0]["details"] == {"signal": "ping"}
    assert rows[0]["timestamp"] < rows[1]["timestamp"]
    # Marked for the incident engine like an agent's result.
    marks = await fetch(
        db_url, "SELECT 1 FROM evaluation_queue WHERE target_id = %s", uuid.UUID(target["id"])
    )
    assert marks == [(1,)]
    hb = (await owner.get(f"/api/v1/targets/{target['id']}")).json()["heartbeat"]
    assert hb["last_ping_at"] == rows[1]["timestamp"]
    assert datetime.fromisoformat(hb["expected_by"]) == datetime.fromisoformat(
        rows[1]["timestamp"]
    ) + timedelta(seconds=90)


async def test_fail_records_a_down_result_with_the_body_as_its_error(
    owner: Persona, anon: Persona
) -> None:
    target = await make_heartbeat(owner)
    url = ping_url(target)
    resp = await anon.post(f"{url}/fail", content=b"pg_dump: disk full\n")
    assert resp.status_code == 200 and resp.json() == {"ok": True}
    await anon.post(f"{url}/fail", content=("é" * 600).encode() + b"\x00tail")
    await anon.get(f"{url}/fail")
    rows = await results(owner, target["id"])
    assert [r["status"] for r in rows] == ["down", "down", "down"]
    assert {r["error_code"] for r in rows} == {"HEARTBEAT_FAILED"}
    assert rows[0]["error"] == "pg_dump: disk full"
    # Only the first KiB is kept (a character cut in half is dropped; NUL never reaches the DB).
    assert rows[1]["error"] == "é" * 512
    assert rows[2]["error"] == "the job reported a failure"
    hb = (await owner.get(f"/api/v1/targets/{target['id']}")).json()["heartbeat"]
    assert hb["last_fail_at"] == rows[2]["timestamp"] and hb["last_ping_at"] is None


async def test_start_then_ping_records_the_run_duration(
    owner: Persona, anon: Persona, db_url: str
) -> None:
    target = await make_heartbeat(owner)
    url = ping_url(target)
    assert (await anon.post(f"{url}/start")).json() == {"ok": True}
    assert await results(owner, target["id"]) == []  # a start is not a result
    hb = (await owner.get(f"/api/v1/targets/{target['id']}")).json()["heartbeat"]
    assert hb["last_start_at"] is not None
    # The run began five seconds before this test's clock says.
    await fetch(
        db_url,
        "UPDATE heartbeats SET last_start_at = last_start_at - interval '5 seconds'"
        " WHERE id = %s RETURNING last_start_at",
        uuid.UUID(target["id"]),
    )
    await anon.get(url)
    await anon.get(url)  # no start before this one: no duration
    await anon.get(f"{url}/start")
    await anon.post(f"{url}/fail", content=b"exit 3")
    first, second, failed = await results(owner, target["id"])
    assert first["status"] == "up" and 5000 <= first["latency_ms"] < 60_000
    assert first["started_at"] < first["finished_at"] == first["timestamp"]
    assert second["latency_ms"] is None and second["started_at"] == second["timestamp"]
    assert failed["status"] == "down" and failed["error"] == "exit 3"
    assert failed["latency_ms"] is not None and failed["started_at"] < failed["timestamp"]
    hb = (await owner.get(f"/api/v1/targets/{target['id']}")).json()["heartbeat"]
    assert hb["last_start_at"] is None


async def test_an_unknown_token_is_a_404_on_every_signal(owner: Persona, anon: Persona) -> None:
    target = await make_heartbeat(owner)
    token = target["heartbeat"]["token"]
    forged = token[:11] + ("A" if token[11] != "A" else "B") + token[12:]  # same lookup prefix
    for bad in ("hb_" + secrets.token_urlsafe(32), forged, "nope", "hb_short", token + "x"):
        for suffix in ("", "/start", "/fail"):
            for method in ("GET", "POST"):
                resp = await anon.request(method, f"/api/heartbeat/{bad}{suffix}")
                assert_error(resp, 404, "HEARTBEAT_NOT_FOUND")
    assert await results(owner, target["id"]) == []
    # A deleted target's URL stops working.
    assert (await owner.delete(f"/api/v1/targets/{target['id']}")).status_code == 204
    assert_error(await anon.get(f"/api/heartbeat/{token}"), 404, "HEARTBEAT_NOT_FOUND")


async def test_a_missed_period_opens_an_incident_and_pings_close_it(
    owner: Persona, anon: Persona, worker: dict[str, Any], db_url: str
) -> None:
    target = await make_heartbeat(owner, alert_confirmations=2)
    tid, ctx = target["id"], worker
    # Created 200 s ago and never pinged: deadlines at -110 s and -50 s passed, the next is +10 s.
    await overdue(db_url, tid, 200)
    await sweep(ctx)
    missed = await results(owner, tid)
    assert [r["status"] for r in missed] == ["down", "down"]
    assert {r["error_code"] for r in missed} == {"HEARTBEAT_MISSED"}
    assert {r["error"] for r in missed} == {"no ping within interval + grace"}
    assert {r["region"] for r in missed} == {"heartbeat"}
    gap = datetime.fromisoformat(missed[1]["timestamp"]) - datetime.fromisoformat(
        missed[0]["timestamp"]
    )
    assert gap == timedelta(seconds=60)  # once per period
    await sweep(ctx)  # nothing new is overdue: nothing recorded twice
    assert len(await results(owner, tid)) == 2
    await evaluate(worker, tid)
    (inc,) = await incidents(owner, tid)
    assert inc["ended_at"] is None
    assert inc["error_sample"] == "no ping within interval + grace"
    assert inc["regions"] == ["heartbeat"]
    assert inc["started_at"] == missed[0]["timestamp"]
    # alert_confirmations = 2: one ping is not a recovery yet, the second one is.
    await anon.get(ping_url(target))
    await evaluate(worker, tid)
    assert (await incidents(owner, tid))[0]["ended_at"] is None
    await anon.post(ping_url(target))
    await evaluate(worker, tid)
    (closed,) = await incidents(owner, tid)
    assert closed["ended_at"] is not None


async def test_the_sweep_marks_missed_targets_for_evaluation(
    owner: Persona, worker: dict[str, Any], settings: Settings, db_url: str
) -> None:
    late = await make_heartbeat(owner, alert_confirmations=1)
    on_time = await make_heartbeat(owner)
    await overdue(db_url, late["id"], 95)  # one deadline (-5 s) passed
    res: Resources = worker["resources"]
    assert await sweep_overdue(res) == 1
    marks = await fetch(db_url, "SELECT target_id FROM evaluation_queue")
    assert marks == [(uuid.UUID(late["id"]),)]
    # ... and the evaluation is queued for a worker, as ingest does.
    assert res.queue is not None
    jobs = await res.queue.queued_jobs(queue_name=queue_name(settings.redis))
    assert [(j.function, j.args) for j in jobs] == [("evaluate_targets", ([late["id"]],))]
    assert await results(owner, on_time["id"]) == []
    hb = (await owner.get(f"/api/v1/targets/{late['id']}")).json()["heartbeat"]
    assert datetime.fromisoformat(hb["expected_by"]) > datetime.now(UTC)
    await evaluate(worker, late["id"])
    assert len(await incidents(owner, late["id"])) == 1


async def test_a_paused_heartbeat_records_nothing_and_restarts_its_period(
    owner: Persona, anon: Persona, worker: dict[str, Any], db_url: str
) -> None:
    target = await make_heartbeat(owner)
    tid = target["id"]
    resp = await owner.patch(f"/api/v1/targets/{tid}", json={"enabled": False})
    assert resp.status_code == 200 and resp.json()["heartbeat"]["token"]
    assert (await anon.get(ping_url(target))).json() == {"ok": True}
    await overdue(db_url, tid, 3600)
    assert await sweep_overdue(worker["resources"]) == 0
    assert await results(owner, tid) == []
    resp = await owner.patch(f"/api/v1/targets/{tid}", json={"enabled": True})
    expected_by = datetime.fromisoformat(resp.json()["heartbeat"]["expected_by"])
    assert expected_by > datetime.now(UTC) + timedelta(seconds=60)
    assert await sweep_overdue(worker["resources"]) == 0


async def test_agents_never_get_heartbeat_slots(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    agent = await make_agent(operator)
    probed = await make_target(owner)
    target = await make_heartbeat(owner)
    hb_id = uuid.UUID(target["id"])
    schedules = "SELECT count(*) FROM schedules WHERE target_id = %s"
    assert await fetch(db_url, schedules, hb_id) == [(0,)]
    # Whatever path touches it: interval change, pause and resume, a region row slipped in.
    await owner.patch(f"/api/v1/targets/{target['id']}", json={"interval": 120})
    await owner.patch(f"/api/v1/targets/{target['id']}", json={"enabled": False})
    await owner.patch(f"/api/v1/targets/{target['id']}", json={"enabled": True})
    await fetch(db_url, "INSERT INTO target_regions VALUES (%s, 'default')", hb_id)
    assert await fetch(db_url, schedules, hb_id) == [(0,)]
    await make_due(db_url, probed["id"])
    leases = (await agent.lease()).json()["leases"]
    assert [lease["target_id"] for lease in leases] == [probed["id"]]
    resp = await owner.put(f"/api/v1/targets/{target['id']}/regions", json={"regions": ["default"]})
    assert_error(resp, 422, "HEARTBEAT_HAS_NO_REGIONS", "/regions")


async def test_an_agent_handed_a_heartbeat_answers_a_probe_error() -> None:
    result = await run_lease(make_lease(HeartbeatCheck()))
    assert (result.status, result.error_code) == ("error", "PROBE_ERROR")
    assert result.error == "this agent cannot run 'heartbeat' checks"


async def test_changing_the_kind_moves_a_target_between_probed_and_pushed(
    owner: Persona, anon: Persona, db_url: str
) -> None:
    target = await make_target(owner, region_policy={"count": 1})
    tid = uuid.UUID(target["id"])
    resp = await owner.patch(f"/api/v1/targets/{tid}", json={"check": {"type": "heartbeat"}})
    assert resp.status_code == 200, resp.text
    pushed = resp.json()
    assert pushed["regions"] == [] and pushed["heartbeat"]["token"].startswith("hb_")
    assert await fetch(db_url, "SELECT count(*) FROM schedules WHERE target_id = %s", tid) == [(0,)]
    # A later update keeps the token (and the one-source region policy still fits).
    resp = await owner.patch(f"/api/v1/targets/{tid}", json={"name": "renamed"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["heartbeat"]["token"] == pushed["heartbeat"]["token"]
    resp = await owner.patch(
        f"/api/v1/targets/{tid}", json={"check": {"type": "http", "url": "https://example.com"}}
    )
    assert resp.status_code == 200, resp.text
    probed = resp.json()
    assert probed["regions"] == ["default"] and "heartbeat" not in probed
    assert await fetch(db_url, "SELECT count(*) FROM schedules WHERE target_id = %s", tid) == [(1,)]
    assert await fetch(db_url, "SELECT count(*) FROM heartbeats WHERE id = %s", tid) == [(0,)]
    assert_error(await anon.get(ping_url(pushed)), 404, "HEARTBEAT_NOT_FOUND")


async def test_another_org_never_sees_the_token(
    owner: Persona, outsider: Persona, anon: Persona
) -> None:
    target = await make_heartbeat(owner)
    token = target["heartbeat"]["token"]
    for path in (f"/api/v1/targets/{target['id']}", f"/api/v1/targets/{target['id']}/results"):
        assert_error(await outsider.get(path), 404, "TARGET_NOT_FOUND")
    resp = await outsider.patch(f"/api/v1/targets/{target['id']}", json={"enabled": False})
    assert_error(resp, 404, "TARGET_NOT_FOUND")
    listed = (await outsider.get("/api/v1/targets")).json()
    assert listed["items"] == [] and token not in str(listed)
    assert_error(await anon.get(f"/api/v1/targets/{target['id']}"), 401, "UNAUTHORIZED")


async def test_the_token_is_stored_as_prefix_keyed_hash_and_sealed_copy_only(
    owner: Persona, app: Litestar, db_url: str
) -> None:
    target = await make_heartbeat(owner)
    token: str = target["heartbeat"]["token"]
    secret_part = token[len("hb_") :]
    (row,) = await fetch(
        db_url,
        "SELECT row_to_json(h)::text, token_prefix, token_hash, secrets FROM heartbeats h"
        " WHERE id = %s",
        uuid.UUID(target["id"]),
    )
    stored, prefix, token_hash, sealed = row
    assert token not in stored and secret_part[8:] not in stored
    assert prefix == token[:11]
    assert bytes(token_hash) == hmac.new(TOKEN_KEY, token.encode(), hashlib.sha256).digest()
    assert set(sealed) == {"heartbeat_token"} and sealed["heartbeat_token"].startswith("v1:k1:")
    # Sealed to this org and target: under another binding it does not open.
    sealer: Sealer = app.state.resources.sealer
    binding = Sealer.binding(owner.org_id, target["id"], "heartbeat_token")
    assert sealer.open(sealed["heartbeat_token"], binding) == token


async def test_key_rotation_rewraps_the_token_and_reads_still_show_it(
    owner: Persona, anon: Persona, db_url: str
) -> None:
    target = await make_heartbeat(owner)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        report = await rotate_keys(
            conn, Sealer(dict(SEALING_KEYS), "k2"), [SealedColumn("heartbeats")]
        )
    assert (report.rewrapped, report.failures) == (1, [])
    (row,) = await fetch(
        db_url, "SELECT secrets FROM heartbeats WHERE id = %s", uuid.UUID(target["id"])
    )
    assert row[0]["heartbeat_token"].startswith("v1:k2:")
    got = (await owner.get(f"/api/v1/targets/{target['id']}")).json()
    assert got["heartbeat"]["token"] == target["heartbeat"]["token"]
    assert (await anon.get(ping_url(target))).json() == {"ok": True}
