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
from tests.control_plane.targets.test_targets_crud import add_channel
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
