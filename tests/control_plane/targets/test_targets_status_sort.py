"""The reads' status is the maintained ``target_state`` (migration 0220); the list's status sort
and filter and its sort by last check answer as the single reads do; and the list's page,
built in PostgreSQL as one JSON array, is exactly what the single read shows of each target."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from tests.conftest import Persona
from tests.control_plane.targets.test_targets_fleet_reads import API, http, make, report

SEVERITY = ["down", "error", "degraded", "unknown", "up", "paused"]


async def _sql(db_url: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute(statement, params)
        return await cur.fetchall() if cur.description else []


async def _incident(db_url: str, target_id: str, status: str, *, ended: bool = False) -> None:
    await _sql(
        db_url,
        "INSERT INTO incidents (id, org_id, target_id, started_at, status, ended_at)"
        " SELECT %s, org_id, id, now(), %s, CASE WHEN %s THEN now() END FROM targets"
        " WHERE id = %s",
        (uuid.uuid4(), status, ended, target_id),
    )


async def _fleet(owner: Persona, db_url: str) -> dict[str, str]:
    """Targets in every status, several per status (ties), across two regions."""
    names = [
        "up1", "up2", "up3", "down1", "down2", "deg1", "err1", "err2", "unk1", "unk2",
        "incerr", "incodd", "closed", "missed", "off1", "off2", "mixed",
    ]  # fmt: skip
    items = [http(n, enabled=not n.startswith("off")) for n in names]
    ids = dict(zip(names, await make(owner, items), strict=True))
    await _sql(db_url, "INSERT INTO regions (id, name) VALUES ('r2', 'R2') ON CONFLICT DO NOTHING")
    await _sql(
        db_url,
        "INSERT INTO target_regions (target_id, region_id) SELECT unnest(%s::uuid[]), 'r2'",
        (list(ids.values()),),
    )
    at = datetime.now(UTC) - timedelta(minutes=5)
    for name, status in [
        ("up1", "up"), ("up2", "up"), ("up3", "up"), ("down1", "down"), ("down2", "down"),
        ("deg1", "degraded"), ("err1", "error"), ("err2", "error"), ("incerr", "up"),
        ("incodd", "up"), ("closed", "up"), ("missed", "missed"), ("off1", "down"),
    ]:  # fmt: skip
        await report(db_url, ids[name], status, at=at)
    # Worst of its regions: up in one, degraded a minute later in the other.
    await report(db_url, ids["mixed"], "up", at=at)
    await report(db_url, ids["mixed"], "degraded", at=at + timedelta(minutes=1), region="r2")
    await report(db_url, ids["up2"], "up", at=at + timedelta(minutes=2), region="r2")
    await _incident(db_url, ids["incerr"], "error")
    await _incident(db_url, ids["incodd"], "open")  # not a status: counts as down
    await _incident(db_url, ids["closed"], "down", ended=True)
    return ids


async def test_reads_status_is_the_rules_from_scratch(owner: Persona, db_url: str) -> None:
    """The reads' status is the maintained one (``target_state``, migration 0220): for targets
    in every status it is what the rules compute from scratch (``vigil_target_status_of``, their
    only copy); and the list's set-based last check (``org_last_checked``) is the view's."""
    await _fleet(owner, db_url)
    org = (await _sql(db_url, "SELECT org_id FROM targets LIMIT 1"))[0][0]
    view = await _sql(
        db_url,
        "SELECT target_id, current_status FROM target_status WHERE org_id = %s ORDER BY target_id",
        (org,),
    )
    scratch = await _sql(
        db_url,
        "SELECT target_id, status FROM vigil_target_status_of("
        "ARRAY(SELECT id FROM targets WHERE org_id = %s)) ORDER BY target_id",
        (org,),
    )
    assert view == scratch
    assert {row[1] for row in view} == set(SEVERITY)
    checked = await _sql(
        db_url,
        "SELECT target_id, last_checked_at FROM target_status WHERE org_id = %s"
        " AND last_checked_at IS NOT NULL ORDER BY target_id",
        (org,),
    )
    fast = await _sql(
        db_url,
        "SELECT target_id, last_checked_at FROM org_last_checked(%s) ORDER BY target_id",
        (org,),
    )
    assert fast == checked and len(checked) > 10


async def test_reads_show_the_maintained_status(owner: Persona, db_url: str) -> None:
    """A single read and the list read the status kept in ``target_state``; they compute none."""
    ids = await _fleet(owner, db_url)
    await _sql(
        db_url, "UPDATE target_state SET status = 'degraded' WHERE target_id = %s", (ids["up1"],)
    )
    assert (await owner.get(f"{API}/{ids['up1']}")).json()["status"] == "degraded"
    page = (await owner.get(API, params={"limit": 100})).json()
    assert next(t for t in page["items"] if t["id"] == ids["up1"])["status"] == "degraded"


async def test_status_sort_and_filter(owner: Persona, db_url: str) -> None:
    ids = await _fleet(owner, db_url)
    by_id = {v: k for k, v in ids.items()}
    expected = {
        "up1": "up", "up2": "up", "up3": "up", "down1": "down", "down2": "down",
        "deg1": "degraded", "err1": "error", "err2": "error", "unk1": "unknown",
        "unk2": "unknown", "incerr": "error", "incodd": "down", "closed": "up",
        "missed": "unknown", "off1": "paused", "off2": "paused", "mixed": "degraded",
    }  # fmt: skip
    page = (await owner.get(API, params={"limit": 100})).json()
    assert {by_id[t["id"]]: t["status"] for t in page["items"]} == expected
    # Severity first, ties by id in the same direction.
    order = sorted(ids.values(), key=lambda i: (SEVERITY.index(expected[by_id[i]]), i))
    page = (await owner.get(API, params={"sort": "status", "limit": 100})).json()
    assert [t["id"] for t in page["items"]] == order
    page = (await owner.get(API, params={"sort": "-status", "limit": 100})).json()
    assert [t["id"] for t in page["items"]] == order[::-1]
    # Pages of a status sort neither skip nor repeat a target across the ties.
    seen: list[str] = []
    for offset in range(0, len(order), 4):
        got = await owner.get(API, params={"sort": "status", "limit": 4, "offset": offset})
        assert got.json()["total"] == len(order)
        seen += [t["id"] for t in got.json()["items"]]
    assert seen == order
    for status in SEVERITY:
        want = sorted(i for i in ids.values() if expected[by_id[i]] == status)
        got = (await owner.get(API, params={"status": status, "limit": 100})).json()
        assert [t["id"] for t in got["items"]] == want, status
        assert got["total"] == len(want)
        assert {t["status"] for t in got["items"]} == {status}
    got = (await owner.get(API, params={"status": "up", "sort": "-name", "limit": 2})).json()
    assert [t["name"] for t in got["items"]] == ["up3", "up2"] and got["total"] == 4
    # Newest last result first, never-checked last (ties by id): as the view orders it.
    page = (await owner.get(API, params={"sort": "-last_checked_at", "limit": 100})).json()
    got_at = [(t["last_result"] or {}).get("at") for t in page["items"]]
    assert got_at[:2] == sorted(got_at[:2], reverse=True)
    assert page["items"][0]["id"] == ids["up2"]
    never = sorted((i for i in ids.values() if expected[by_id[i]] in ("unknown",)), reverse=True)
    never = [i for i in never if by_id[i] != "missed"] + sorted([ids["off2"]], reverse=True)
    assert sorted(t["id"] for t in page["items"] if t["last_result"] is None) == sorted(never)
    # With a status filter beside it (the maintained status).
    page = (await owner.get(API, params={"sort": "-last_checked_at", "status": "up"})).json()
    ups = {i for i in ids.values() if expected[by_id[i]] == "up"}
    assert {t["id"] for t in page["items"]} == ups and page["total"] == len(ups)
    assert page["items"][0]["id"] == ids["up2"]


async def test_list_page_reads_as_single_reads(owner: Persona, db_url: str) -> None:
    """The JSON-built page (credentials redacted in SQL and Python) equals each target's own
    read, field for field: secrets, secret headers, last result, incident, last 24 h."""
    ids = await _fleet(owner, db_url)
    secret = await owner.post(
        API,
        json={
            "name": "secret",
            "check": {
                "type": "http",
                "url": "https://s.example.com/",
                "basic_auth": ["u", "p"],
                "headers": {"X-Api-Key": "key-value", "Accept": "a/b"},
                "secret_headers": ["X-Api-Key"],
            },
            "tags": ["z", "a"],
            "region_policy": {"count": 1},
        },
    )
    assert secret.status_code == 201, secret.text
    await report(db_url, secret.json()["id"], "up", at=datetime.now(UTC), latency=1.23456789)
    page = (await owner.get(API, params={"limit": 100})).json()
    assert page["total"] == len(ids) + 1
    for item in page["items"]:
        single = (await owner.get(f"{API}/{item['id']}")).json()
        assert item == single
    got = next(t for t in page["items"] if t["name"] == "secret")
    assert "key-value" not in str(got)
    assert got["check"]["basic_auth"] == "***" and got["check"]["headers"]["X-Api-Key"] == "***"
    assert got["check"]["headers"]["Accept"] == "a/b"
    assert got["last_result"]["latency_ms"] == 1.235
