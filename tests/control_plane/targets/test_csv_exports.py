"""format=csv on the target list, results and incidents: streamed RFC 4180 with a header row,
parsed back equal to the JSON read; formula cells neutralised (issue 16)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from control_plane.core.csv_export import cell
from tests.conftest import Persona, assert_error
from tests.control_plane.targets.test_targets_fleet_reads import make, open_incident, report

API = "/api/v1/targets"


def http(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "check": {"type": "http", "url": f"https://h{len(name)}.example.com/"},
        **extra,
    }


def parse(resp: Any) -> list[dict[str, str]]:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv"), resp.text[:300]
    assert "attachment" in resp.headers["content-disposition"]
    assert resp.text.endswith("\r\n")
    return list(csv.DictReader(io.StringIO(resp.text, newline="")))


def pick(doc: Any, path: str) -> Any:
    for part in path.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def same(rows: list[dict[str, str]], items: list[dict[str, Any]]) -> None:
    """Each CSV row is its JSON item, cell by cell (as core/csv_export.py writes a value)."""
    assert len(rows) == len(items)
    for row, item in zip(rows, items, strict=True):
        for column, text in row.items():
            assert text == cell(pick(item, column)), (column, text, pick(item, column))


async def test_target_list_csv_equals_json_and_neutralises_formulas(owner: Persona) -> None:
    evil = ['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)", 'quote " and, comma']
    await make(owner, [http(name, tags=["t;1"] if i == 0 else []) for i, name in enumerate(evil)])
    rows = parse(await owner.get(API, params={"format": "csv", "sort": "name"}))
    items = (await owner.get(API, params={"sort": "name"})).json()["items"]
    # A list item is the single read, last_24h included.
    singles = [(await owner.get(f"{API}/{item['id']}")).json() for item in items]
    assert [i["last_24h"] for i in items] == [i["last_24h"] for i in singles]
    assert all(item["last_24h"] is not None for item in items)
    same(rows, items)
    names = [r["name"] for r in rows]
    assert '\'=HYPERLINK("http://x")' in names and "'+1+1" in names
    assert "'-2" in names and "'@SUM(A1)" in names
    assert 'quote " and, comma' in names  # quoted, not neutralised
    assert all(not n.startswith(("=", "+", "-", "@")) for n in names)
    assert rows[0].keys() >= {"id", "name", "status", "last_result.latency_ms"}


async def test_target_list_csv_filters_and_header_only_when_empty(owner: Persona) -> None:
    await make(owner, [http("a"), http("b", enabled=False)])
    rows = parse(await owner.get(API, params={"format": "csv", "status": "paused"}))
    assert [r["name"] for r in rows] == ["b"]
    resp = await owner.get(API, params={"format": "csv", "kind": "dns"})
    assert parse(resp) == [] and resp.text.startswith("id,name,")


async def test_results_and_incidents_csv_equal_json(owner: Persona, db_url: str) -> None:
    (tid,) = await make(owner, [http("svc")])
    now = datetime.now(UTC).replace(microsecond=0)
    for i in range(30):
        status = "down" if i % 7 == 0 else "up"
        await report(
            db_url,
            tid,
            status,
            at=now - timedelta(minutes=i + 1),
            latency=10.0 + i / 4,
            error="=cmd|' /C calc'!A0" if status == "down" else None,
        )
    await open_incident(db_url, tid)
    path = f"{API}/{tid}/results"
    rows = parse(await owner.get(path, params={"format": "csv"}))
    items = (await owner.get(path)).json()["items"]
    assert len(rows) == 30
    same(rows, items)
    assert {r["error"] for r in rows if r["status"] == "down"} == {"'=cmd|' /C calc'!A0"}
    for path in (f"{API}/{tid}/incidents", "/api/v1/incidents"):
        rows = parse(await owner.get(path, params={"format": "csv"}))
        items = (await owner.get(path)).json()["items"]
        assert len(rows) == 1
        same(rows, items)


async def test_csv_cross_org_and_bad_format(owner: Persona, outsider: Persona) -> None:
    (tid,) = await make(owner, [http("svc")])
    for path in (f"{API}/{tid}/results", f"{API}/{tid}/incidents", f"{API}/{uuid.uuid4()}/results"):
        assert_error(await outsider.get(path, params={"format": "csv"}), 404, "TARGET_NOT_FOUND")
    assert parse(await outsider.get(API, params={"format": "csv"})) == []
    for path in (API, f"{API}/{tid}/results", f"{API}/{tid}/incidents", "/api/v1/incidents"):
        assert_error(
            await owner.get(path, params={"format": "xml"}), 400, "INVALID_QUERY_PARAM", "/format"
        )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "true"),
        (1.5, "1.5"),
        (-3, "-3"),
        ("-x", "'-x"),
        ("\tx", "'\tx"),
        (["a"], '["a"]'),
        ("ok", "ok"),
    ],
)
def test_cells(value: Any, text: str) -> None:
    assert cell(value) == text
    assert msgspec  # the module is what writes JSON numbers
