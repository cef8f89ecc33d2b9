"""The list's page (one JSON array built in PostgreSQL from row types) and its total (the org's
maintained totals when only the status filters it) against each target's single read, for every
sort and filter, in two orgs with a mix of targets with and without a last result, an open
incident, last 24 h, alert bindings and regions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from control_plane.domain.targets.service import SORTS
from tests.conftest import Persona
from tests.control_plane.targets.test_targets_crud import add_channel, add_region
from tests.control_plane.targets.test_targets_fleet_reads import API, http, make, report
from tests.control_plane.targets.test_targets_status_sort import SEVERITY, _fleet, _sql


async def _with_alerts(persona: Persona, db_url: str, names: list[str]) -> list[str]:
    """Targets bound to two channels each, in an order other than the channels' ids."""
    ch1 = await add_channel(db_url, persona.org_id, "ch1")
    ch2 = await add_channel(db_url, persona.org_id, "ch2")
    ids = []
    for name in names:
        resp = await persona.post(
            API,
            json={
                **http(name, tags=["alerting"]),
                "alerts": [{"channel_id": ch2}, {"channel_id": ch1}],
            },
        )
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["id"])
    return ids


async def _second_org(outsider: Persona, db_url: str) -> list[str]:
    """Another org's targets: a checked one with an incident, a fresh one, a paused one and a
    tcp one in no region but the default."""
    ids = await make(
        outsider, [http("o-up"), http("o-fresh"), http("o-off", enabled=False, tags=["ops"])]
    )
    tcp = await outsider.post(
        API,
        json={"name": "o-tcp", "check": {"type": "tcp", "host": "db.example.com", "port": 5432}},
    )
    assert tcp.status_code == 201, tcp.text
    ids.append(tcp.json()["id"])
    at = datetime.now(UTC) - timedelta(minutes=3)
    await report(db_url, ids[0], "down", at=at, latency=None, error="refused")
    await _sql(
        db_url,
        "INSERT INTO incidents (id, org_id, target_id, started_at, status)"
        " SELECT %s, org_id, id, now(), 'down' FROM targets WHERE id = %s",
        (uuid.uuid4(), ids[0]),
    )
    return ids


async def _singles(persona: Persona) -> dict[str, dict[str, Any]]:
    """Every target of the org as its own read (GET /targets/{id}), by id."""
    page = (await persona.get(API, params={"limit": 1000})).json()
    out = {}
    for item in page["items"]:
        single = await persona.get(f"{API}/{item['id']}")
        assert single.status_code == 200
        out[item["id"]] = single.json()
    return out


def _matches(t: dict[str, Any], filters: dict[str, str]) -> bool:
    check = t["check"]
    for key, value in filters.items():
        if key == "status" and t["status"] != value:
            return False
        if key == "kind" and check["type"] != value:
            return False
        if key == "tag" and value not in t["tags"]:
            return False
        if key == "enabled" and t["enabled"] != (value == "true"):
            return False
        if key == "region" and value not in t["regions"]:
            return False
        if key == "q":
            hay = [t["name"], check.get("url") or "", check.get("host") or ""]
            if not any(value in h for h in hay):
                return False
    return True


FILTERS: list[dict[str, str]] = [
    {},
    *({"status": s} for s in SEVERITY),
    {"kind": "http"},
    {"kind": "tcp"},
    {"tag": "alerting"},
    {"enabled": "false"},
    {"enabled": "true"},
    {"q": "up"},
    {"region": "r2"},
    {"region": "default"},
    {"status": "up", "region": "r2"},
    {"status": "down", "kind": "http"},
]


async def _check_every_page(persona: Persona, singles: dict[str, dict[str, Any]]) -> None:
    for filters in FILTERS:
        want = {i for i, t in singles.items() if _matches(t, filters)}
        for sort in (None, *SORTS):
            params: dict[str, Any] = {"limit": 1000, **filters}
            if sort:
                params["sort"] = sort
            resp = await persona.get(API, params=params)
            assert resp.status_code == 200, resp.text
            page = resp.json()
            where = f"{filters} sort={sort}"
            assert page["total"] == len(want), where
            assert {t["id"] for t in page["items"]} == want, where
            assert len(page["items"]) == len(want), where
            for item in page["items"]:
                assert item == singles[item["id"]], f"{where}: {item['name']}"
            # A page of two from the middle: the same objects, in the full page's order.
            if len(want) > 3:
                part = (await persona.get(API, params={**params, "limit": 2, "offset": 1})).json()
                assert part["items"] == page["items"][1:3], where
                assert part["total"] == len(want), where


async def test_every_sort_and_filter_reads_as_single_reads(
    owner: Persona, outsider: Persona, db_url: str
) -> None:
    """For every sort and every filter, in two orgs, each listed target is exactly its single
    read (status, last result, incident, last 24 h, alerts, regions), the page holds exactly the
    org's targets the filter matches, and the total counts them."""
    ids = await _fleet(owner, db_url)
    alerting = await _with_alerts(owner, db_url, ["al-up", "al-fresh"])
    await report(db_url, alerting[0], "up", at=datetime.now(UTC) - timedelta(minutes=1))
    theirs = await _second_org(outsider, db_url)
    mine = await _singles(owner)
    other = await _singles(outsider)
    assert set(mine) == set(ids.values()) | set(alerting)
    assert set(other) == set(theirs)
    # The mix the pages must get right: with and without each part of the read.
    rows = list(mine.values())
    for part in ("last_result", "incident"):
        assert any(t[part] is None for t in rows) and any(t[part] is not None for t in rows)
    assert any(t["last_24h"]["checks"] for t in rows)
    assert any(not t["last_24h"]["checks"] for t in rows)
    assert any(t["alerts"] for t in rows) and any(not t["alerts"] for t in rows)
    assert {len(t["regions"]) for t in rows} >= {2}
    assert other[theirs[0]]["incident"] is not None and other[theirs[0]]["status"] == "down"
    await _check_every_page(owner, mine)
    await _check_every_page(outsider, other)


@pytest.mark.parametrize("status", [None, "up", "paused"])
async def test_total_follows_creates_and_deletes(
    owner: Persona, outsider: Persona, db_url: str, status: str | None
) -> None:
    """The total without filters (or with the status alone) is the org's maintained count: it
    follows creates, pauses and deletes, and never counts another org's targets."""
    params = {"status": status} if status else {}
    a, b, c = await make(owner, [http("a"), http("b"), http("c")])
    await make(outsider, [http("x"), http("y")])
    at = datetime.now(UTC) - timedelta(minutes=1)
    for target in (a, b, c):
        await report(db_url, target, "up", at=at)

    async def total() -> int:
        page = (await owner.get(API, params=params)).json()
        assert page["total"] == len(page["items"])
        return int(page["total"])

    want = {None: 3, "up": 3, "paused": 0}[status]
    assert await total() == want
    await owner.post(f"{API}/{a}/pause")
    assert await total() == {None: 3, "up": 2, "paused": 1}[status]
    assert (await owner.delete(f"{API}/{b}")).status_code == 204
    assert await total() == {None: 2, "up": 1, "paused": 1}[status]
    body = {"action": {"type": "delete"}, "ids": [a, c]}
    bulk = await owner.post(f"{API}/bulk-action", json=body)
    assert bulk.status_code == 200, bulk.text
    assert await total() == 0
    got = (await outsider.get(API, params=params)).json()
    assert got["total"] == {None: 2, "up": 0, "paused": 0}[status] == len(got["items"])


async def _list_equals_singles(persona: Persona) -> dict[str, dict[str, Any]]:
    """Every item of the org's list (by id and by status) is exactly its single read; the items
    by id."""
    items: dict[str, dict[str, Any]] = {}
    for sort in (None, "status"):
        params: dict[str, Any] = {"limit": 1000, **({"sort": sort} if sort else {})}
        page = (await persona.get(API, params=params)).json()
        for item in page["items"]:
            single = (await persona.get(f"{API}/{item['id']}")).json()
            assert item == single, f"sort={sort}: {item['name']}"
            items[item["id"]] = item
    return items


async def test_every_write_path_keeps_the_list_item_its_single_read(
    owner: Persona, db_url: str
) -> None:
    """After each kind of write (create, bulk create, PATCH, bulk actions, regions, pause and
    resume, a channel's delete removing its bindings, a write outside the API) every item of
    the list still equals its single read, and shows the write: the guard for any part of the
    list's read kept apart from the tables it comes from (a copy that some write path left
    stale fails it)."""
    await add_region(db_url, "r2")
    ch1 = await add_channel(db_url, owner.org_id, "ch1")
    ch2 = await add_channel(db_url, owner.org_id, "ch2")
    secret = http(
        "secret",
        alerts=[{"channel_id": ch2}, {"channel_id": ch1}],
        tags=["s"],
    )
    secret["check"].update(
        bearer_token="tok", headers={"X-Api-Key": "k", "X-Plain": "p"}, secret_headers=["x-api-key"]
    )
    resp = await owner.post(API, json=secret)
    assert resp.status_code == 201, resp.text
    a = resp.json()["id"]
    b1, b2, b3 = await make(
        owner, [http("b1"), http("b2", tags=["x"]), http("b3", alerts=[{"channel_id": ch1}])]
    )
    await report(db_url, b1, "up", at=datetime.now(UTC) - timedelta(minutes=1))
    items = await _list_equals_singles(owner)
    assert items[a]["check"]["bearer_token"] == "***"
    assert items[a]["check"]["headers"] == {"X-Api-Key": "***", "X-Plain": "p"}
    assert [x["channel_id"] for x in items[a]["alerts"]] == [ch2, ch1]

    body = {"name": "secret-2", "tags": ["t"], "alerts": [{"channel_id": ch1}]}
    assert (await owner.patch(f"{API}/{a}", json=body)).status_code == 200
    check = {"type": "http", "url": "https://moved.example.com/", "basic_auth": ["u", "p"]}
    assert (await owner.patch(f"{API}/{b1}", json={"check": check})).status_code == 200
    items = await _list_equals_singles(owner)
    assert items[a]["name"] == "secret-2" and items[a]["tags"] == ["t"]
    assert items[b1]["check"]["url"] == "https://moved.example.com/"
    assert items[b1]["check"]["basic_auth"] == "***"

    ids = [a, b1, b2, b3]
    actions: list[dict[str, Any]] = [
        {"type": "tag_add", "tags": ["bulk"]},
        {"type": "tag_remove", "tags": ["x"]},
        {"type": "disable"},
        {"type": "enable"},
        {"type": "update", "interval": 120, "notify_recovery": False},
    ]
    for action in actions:
        resp = await owner.post(f"{API}/bulk-action", json={"action": action, "ids": ids})
        assert resp.status_code == 200, resp.text
        items = await _list_equals_singles(owner)
        assert all("bulk" in items[i]["tags"] for i in ids), action
    assert all("x" not in items[i]["tags"] and items[i]["enabled"] for i in ids)
    assert all(items[i]["interval"] == 120 and not items[i]["notify_recovery"] for i in ids)

    resp = await owner.put(f"{API}/{b2}/regions", json={"regions": ["default", "r2"]})
    assert resp.status_code == 200, resp.text
    assert (await _list_equals_singles(owner))[b2]["regions"] == ["default", "r2"]
    assert (await owner.post(f"{API}/{b3}/pause")).status_code == 200
    assert not (await _list_equals_singles(owner))[b3]["enabled"]
    assert (await owner.post(f"{API}/{b3}/resume")).status_code == 200
    assert (await _list_equals_singles(owner))[b3]["enabled"]

    resp = await owner.delete(f"/api/v1/notification-channels/{ch1}")
    assert resp.status_code == 204, resp.text
    items = await _list_equals_singles(owner)
    assert items[a]["alerts"] == [] and items[b3]["alerts"] == []

    # A write no service path makes (a migration, an operator's fix) shows in the list too.
    await _sql(db_url, "UPDATE targets SET name = 'by-sql' WHERE id = %s", (b2,))
    await _sql(
        db_url, "DELETE FROM target_regions WHERE target_id = %s AND region_id = 'r2'", (b2,)
    )
    items = await _list_equals_singles(owner)
    assert items[b2]["name"] == "by-sql" and items[b2]["regions"] == ["default"]
    assert (await owner.delete(f"{API}/{a}")).status_code == 204
    assert a not in await _list_equals_singles(owner)


async def test_list_items_of_every_kind_and_stored_form_are_their_single_reads(
    owner: Persona, db_url: str
) -> None:
    """The list's items (built by the list statement, decoded by the API) equal the
    single reads for the rows the common http target does not exercise: a heartbeat target (its
    endpoint filled in), a spec stored by older code (fields it did not know read as their
    defaults, a secret header it kept in the clear read as ``***``), a paused target and one
    with an open incident."""
    resp = await owner.post(API, json={"name": "hb", "check": {"type": "heartbeat", "grace": 30}})
    assert resp.status_code == 201, resp.text
    hb = resp.json()["id"]
    old, paused, failing = await make(
        owner, [http("old"), http("paused", enabled=False), http("failing")]
    )
    await _sql(
        db_url,
        "UPDATE targets SET spec = (spec - 'assertions' - 'secret_headers')"
        " || jsonb_build_object('headers', jsonb_build_object('Authorization', 'Bearer x',"
        " 'X-Plain', 'p')) WHERE id = %s",
        (old,),
    )
    at = datetime.now(UTC) - timedelta(minutes=2)
    await report(db_url, failing, "down", at=at, latency=12.3456789, error="refused")
    await _sql(
        db_url,
        "INSERT INTO incidents (id, org_id, target_id, started_at, status)"
        " SELECT %s, org_id, id, now(), 'down' FROM targets WHERE id = %s",
        (uuid.uuid4(), failing),
    )
    items = await _list_equals_singles(owner)
    assert items[hb]["heartbeat"]["url"]
    assert items[old]["check"]["headers"] == {"Authorization": "***", "X-Plain": "p"}
    assert items[old]["check"]["assertions"] == [] and items[old]["check"]["secret_headers"] == []
    assert items[paused]["status"] == "paused"
    assert items[failing]["incident"] is not None and items[failing]["status"] == "down"
    assert items[failing]["last_result"]["latency_ms"] == 12.346
