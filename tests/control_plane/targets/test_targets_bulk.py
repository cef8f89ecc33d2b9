"""POST /api/v1/targets/bulk and /bulk-action, pause and resume (issue 16)."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.conftest import Persona, assert_error

API = "/api/v1/targets"


def http(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": f"t{i}",
        "check": {"type": "http", "url": f"https://e{i}.example.com/"},
        **extra,
    }


async def count_targets(db_url: str, org_id: Any) -> int:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        row = await (
            await conn.execute("SELECT count(*) FROM targets WHERE org_id = %s", (org_id,))
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_bulk_create_small_batch_reads_back_like_single_creates(
    owner: Persona, db_url: str
) -> None:
    body = {"targets": [http(0), http(1, interval=120, tags=["prod"]), http(2, enabled=False)]}
    resp = await owner.post(f"{API}/bulk", json=body)
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert out["created"] == 3
    assert [t["name"] for t in out["items"]] == ["t0", "t1", "t2"]
    assert out["items"][1]["interval"] == 120 and out["items"][1]["tags"] == ["prod"]
    for item in out["items"]:
        got = await owner.get(f"{API}/{item['id']}")
        assert got.status_code == 200
        assert got.json()["regions"] == item["regions"] == ["default"]
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        rows = await (
            await conn.execute(
                "SELECT s.target_id FROM schedules s JOIN targets t ON t.id = s.target_id "
                "WHERE t.org_id = %s",
                (owner.org_id,),
            )
        ).fetchall()
    # The disabled one has no schedule; the others one each, as single creates.
    assert len(rows) == 2


async def test_bulk_create_10000_with_failures_in_the_middle_creates_nothing(
    owner: Persona, db_url: str
) -> None:
    items = [http(i) for i in range(10_000)]
    items[4000] = {"name": "bad", "check": {"type": "http", "url": "ftp://x.example.com/"}}
    items[5000] = http(5000, interval=5)
    items[5001] = http(5001, interval=10)
    items[5001]["check"]["timeout"] = 20_000
    items[6000] = {"name": "y"}
    items[7000] = http(7000, tags=["has space"])
    resp = await owner.post(f"{API}/bulk", json={"targets": items})
    err = assert_error(resp, 400, "BULK_VALIDATION_FAILED", "/targets")
    got = [(e["index"], e["code"], e["field"]) for e in err["details"]["errors"]]
    assert got == [
        (4000, "INVALID_URL_SCHEME", "/check/url"),
        (5000, "MIN_CHECK_INTERVAL", "/interval"),
        (5001, "INVALID_TIMEOUT", "/check/timeout"),
        (6000, "MISSING_FIELD", "/check"),
        (7000, "INVALID_TAG", "/tags/0"),
    ]
    assert err["details"]["count"] == 5
    assert await count_targets(db_url, owner.org_id) == 0


async def test_bulk_create_10000_valid(owner: Persona, db_url: str) -> None:
    resp = await owner.post(f"{API}/bulk", json={"targets": [http(i) for i in range(10_000)]})
    assert resp.status_code == 201, resp.text[:500]
    assert resp.json()["created"] == 10_000
    assert await count_targets(db_url, owner.org_id) == 10_000
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        row = await (
            await conn.execute(
                "SELECT count(*), count(DISTINCT extract(second FROM next_due_at)) "
                "FROM schedules s JOIN targets t ON t.id = s.target_id WHERE t.org_id = %s",
                (owner.org_id,),
            )
        ).fetchone()
    assert row is not None
    scheduled, distinct_seconds = row
    assert scheduled == 10_000
    assert distinct_seconds > 30  # spread over the minute, not all at one instant


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"targets": []}, "BULK_EMPTY", "/targets"),
        ({"targets": [http(i) for i in range(10_001)]}, "BULK_TOO_LARGE", "/targets"),
        ({}, "MISSING_FIELD", "/targets"),
        ({"targets": "x"}, "INVALID_BULK", "/targets"),
        ({"targets": [], "extra": 1}, "UNKNOWN_FIELD", "/extra"),
    ],
)
async def test_bulk_create_bad_bodies(
    owner: Persona, body: dict[str, Any], code: str, field: str
) -> None:
    assert_error(await owner.post(f"{API}/bulk", json=body), 400, code, field)


async def test_bulk_create_item_not_an_object_is_an_item_error(owner: Persona) -> None:
    resp = await owner.post(f"{API}/bulk", json={"targets": [http(0), 7]})
    err = assert_error(resp, 400, "BULK_VALIDATION_FAILED")
    assert [e["index"] for e in err["details"]["errors"]] == [1]


async def test_bulk_create_quota_checked_once_for_the_batch(owner: Persona, db_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO plan_overrides (org_id, max_targets) VALUES (%s, 5)", (owner.org_id,)
        )
    resp = await owner.post(f"{API}/bulk", json={"targets": [http(i) for i in range(6)]})
    err = assert_error(resp, 422, "QUOTA_EXCEEDED")
    assert err["details"]["limit"] == 5
    assert await count_targets(db_url, owner.org_id) == 0
    resp = await owner.post(f"{API}/bulk", json={"targets": [http(i) for i in range(5)]})
    assert resp.status_code == 201


# -- bulk actions ------------------------------------------------------------------------------


async def make(persona: Persona, n: int, **extra: Any) -> list[str]:
    resp = await persona.post(f"{API}/bulk", json={"targets": [http(i, **extra) for i in range(n)]})
    assert resp.status_code == 201, resp.text
    return [t["id"] for t in resp.json()["items"]]


async def test_bulk_action_across_orgs_touches_nothing_of_theirs(
    owner: Persona, outsider: Persona
) -> None:
    mine = await make(owner, 3)
    theirs = await make(outsider, 2)
    for action in (
        {"type": "disable"},
        {"type": "tag_add", "tags": ["frozen"]},
        {"type": "update", "interval": 300},
        {"type": "delete"},
    ):
        resp = await owner.post(
            f"{API}/bulk-action", json={"ids": mine + theirs + ["nope"], "action": action}
        )
        assert resp.status_code == 200, resp.text
        out = resp.json()
        assert out["succeeded"] == mine
        assert sorted(f["id"] for f in out["failed"]) == sorted([*theirs, "nope"])
        assert {f["code"] for f in out["failed"]} == {"TARGET_NOT_FOUND"}
    for tid in theirs:
        got = (await outsider.get(f"{API}/{tid}")).json()
        assert got["enabled"] is True and got["tags"] == [] and got["interval"] == 60
    for tid in mine:
        assert (await owner.get(f"{API}/{tid}")).status_code == 404


async def test_bulk_actions_enable_disable_tags_update(owner: Persona) -> None:
    ids = await make(owner, 3, tags=["a"])

    async def act(action: dict[str, Any], which: list[str] = ids) -> dict[str, Any]:
        resp = await owner.post(f"{API}/bulk-action", json={"ids": which, "action": action})
        assert resp.status_code == 200, resp.text
        out: dict[str, Any] = resp.json()
        return out

    await act({"type": "disable"})
    for i in ids:
        assert not (await owner.get(f"{API}/{i}")).json()["enabled"]
    await act({"type": "enable"}, ids[:1])
    assert (await owner.get(f"{API}/{ids[0]}")).json()["enabled"]
    await act({"type": "tag_add", "tags": ["b", "a"]})
    assert (await owner.get(f"{API}/{ids[1]}")).json()["tags"] == ["a", "b"]
    await act({"type": "tag_remove", "tags": ["a"]})
    assert (await owner.get(f"{API}/{ids[1]}")).json()["tags"] == ["b"]
    out = await act({"type": "update", "interval": 600, "notify_recovery": False})
    assert out == {"succeeded": ids, "failed": []}
    got = (await owner.get(f"{API}/{ids[2]}")).json()
    assert got["interval"] == 600 and got["notify_recovery"] is False
    # An interval under a kind's floor fails per id.
    tls = await owner.post(
        API,
        json={"name": "cert", "check": {"type": "tls_cert", "host": "example.com"}},
    )
    assert tls.status_code == 201, tls.text
    out = await act({"type": "update", "interval": 60}, [ids[0], tls.json()["id"]])
    assert out["succeeded"] == [ids[0]]
    assert out["failed"][0]["code"] == "MIN_CHECK_INTERVAL"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"ids": [], "action": {"type": "disable"}}, "BULK_EMPTY", "/ids"),
        ({"ids": ["x"] * 10_001, "action": {"type": "disable"}}, "BULK_TOO_LARGE", "/ids"),
        ({"ids": ["x"], "action": {"type": "explode"}}, "INVALID_ACTION", "/action/type"),
        ({"ids": ["x"], "action": {"type": "tag_add", "tags": ["a b"]}}, "INVALID_TAG", None),
        ({"ids": ["x"], "action": {"type": "tag_add", "tags": []}}, "INVALID_TAG", None),
        ({"ids": ["x"], "action": {"type": "update"}}, "INVALID_ACTION", "/action"),
        ({"ids": ["x"], "action": {"type": "update", "interval": 0}}, "INVALID_INTERVAL", None),
        ({"ids": ["x"]}, "MISSING_FIELD", "/action"),
        ({"ids": "x", "action": {"type": "delete"}}, "INVALID_IDS", "/ids"),
    ],
)
async def test_bulk_action_bad_bodies(
    owner: Persona, body: dict[str, Any], code: str, field: str | None
) -> None:
    assert_error(await owner.post(f"{API}/bulk-action", json=body), 400, code, field)


# -- pause / resume ----------------------------------------------------------------------------


async def test_pause_and_resume(owner: Persona, outsider: Persona) -> None:
    (tid,) = await make(owner, 1)
    resp = await owner.post(f"{API}/{tid}/pause")
    assert resp.status_code == 200 and resp.json()["enabled"] is False
    resp = await owner.post(f"{API}/{tid}/resume")
    assert resp.status_code == 200 and resp.json()["enabled"] is True
    for path in (f"{API}/{tid}/pause", f"{API}/{tid}/resume", f"{API}/{uuid.uuid4()}/pause"):
        assert_error(await outsider.post(path), 404, "TARGET_NOT_FOUND")
    assert (await owner.get(f"{API}/{tid}")).json()["enabled"] is True


async def test_bulk_and_bulk_action_spend_the_bulk_ops_budget(owner: Persona, db_url: str) -> None:
    """Both bulk routes spend the org's ``bulk_ops`` budget (not ``api_writes``); past it they
    answer 429 RATE_LIMITED and do nothing."""
    from tests.control_plane.accounts.test_rate_limits import set_budgets

    await set_budgets(db_url, owner.org_id, bulk_ops=2, api_writes=100)
    created = await owner.post(f"{API}/bulk", json={"targets": [http(1), http(2)]})
    assert created.status_code == 201 and created.headers["x-ratelimit-limit"] == "2"
    assert created.headers["x-ratelimit-remaining"] == "1"
    ids = [t["id"] for t in created.json()["items"]]
    acted = await owner.post(f"{API}/bulk-action", json={"ids": ids, "action": {"type": "disable"}})
    assert acted.status_code == 200 and acted.headers["x-ratelimit-remaining"] == "0"
    refused = await owner.post(f"{API}/bulk", json={"targets": [http(3)]})
    err = assert_error(refused, 429, "RATE_LIMITED")
    assert err["details"]["scope"] == "per_org_bulk_ops"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    refused = await owner.post(
        f"{API}/bulk-action", json={"ids": ids, "action": {"type": "delete"}}
    )
    assert_error(refused, 429, "RATE_LIMITED")
    # Nothing of the refused requests happened; single writes keep their own budget.
    listed = (await owner.get(API)).json()
    assert listed["total"] == 2 and all(not t["enabled"] for t in listed["items"])
    single = await owner.post(API, json=http(4))
    assert single.status_code == 201 and single.headers["x-ratelimit-limit"] == "100"
