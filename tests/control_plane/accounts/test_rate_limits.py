"""Rate budgets: GCRA per (org, category) and (key, category), shared by every replica."""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any

import psycopg
import pytest
from litestar.testing import AsyncTestClient

from control_plane.app import create_app
from control_plane.core.ratelimit import category
from control_plane.domain.orgs.service import create_token
from control_plane.settings import Settings
from tests.conftest import Persona, assert_error
from tests.stack import TOKEN_KEY


async def set_budgets(db_url: str, org_id: Any, **rates: int) -> None:
    cols = ", ".join(f"rate_{k}" for k in rates)
    vals = ", ".join(["%s"] * len(rates))
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            f"INSERT INTO plan_overrides (org_id, {cols}) VALUES (%s, {vals})",
            (org_id, *rates.values()),
        )


@pytest.mark.parametrize(
    ("method", "path", "cat"),
    [
        ("GET", "/api/v1/targets", "api_reads"),
        ("HEAD", "/api/v1/targets", "api_reads"),
        ("POST", "/api/v1/targets", "api_writes"),
        ("DELETE", "/api/v1/targets/x", "api_writes"),
        ("POST", "/api/v1/targets/bulk-action", "bulk_ops"),
        ("POST", "/api/v1/targets/test", "test_now"),
        ("POST", "/api/v1/notification-channels/x/test", "test_now"),
        ("POST", "/api/v1/targets/x/check-now", "check_now"),
    ],
)
def test_categories(method: str, path: str, cat: str) -> None:
    assert category(method, path) == cat


async def test_headers_count_down_then_429_with_retry_after(owner: Persona, db_url: str) -> None:
    await set_budgets(db_url, owner.org_id, api_reads=3, api_writes=50)
    seen = []
    for _ in range(3):
        resp = await owner.get("/api/v1/targets")
        assert resp.status_code == 200
        seen.append(int(resp.headers["x-ratelimit-remaining"]))
        assert resp.headers["x-ratelimit-limit"] == "3"
        assert int(resp.headers["x-ratelimit-reset"]) >= int(time.time())
    assert seen == [2, 1, 0]
    resp = await owner.get("/api/v1/targets")
    err = assert_error(resp, 429, "RATE_LIMITED")
    assert err["details"]["scope"] == "per_org_api_reads"
    assert 1 <= int(resp.headers["retry-after"]) <= 60
    assert resp.headers["x-ratelimit-remaining"] == "0"
    # Another category keeps its own budget; errors carry the headers too.
    resp = await owner.get("/api/v1/targets/not-a-uuid", headers={})
    assert resp.status_code == 429
    resp = await owner.delete(f"/api/v1/targets/{uuid.uuid4()}")
    assert resp.status_code == 404 and resp.headers["x-ratelimit-limit"] == "50"


async def test_the_org_budget_is_shared_by_its_keys(owner: Persona, db_url: str) -> None:
    await set_budgets(db_url, owner.org_id, api_reads=2)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        other = await create_token(conn, TOKEN_KEY, owner.org_id, "second")
    assert (await owner.get("/api/v1/targets")).status_code == 200
    h = {"Authorization": f"Bearer {other.token}"}
    assert (await owner.get("/api/v1/targets", headers=h)).status_code == 200
    err = assert_error(await owner.get("/api/v1/targets", headers=h), 429, "RATE_LIMITED")
    assert err["details"]["scope"] == "per_org_api_reads"


async def test_another_org_is_not_touched(owner: Persona, outsider: Persona, db_url: str) -> None:
    await set_budgets(db_url, owner.org_id, api_reads=1)
    await set_budgets(db_url, outsider.org_id, api_reads=1)
    assert (await owner.get("/api/v1/targets")).status_code == 200
    assert (await owner.get("/api/v1/targets")).status_code == 429
    assert (await outsider.get("/api/v1/targets")).status_code == 200


async def test_two_replicas_share_one_budget(
    owner: Persona, db_url: str, settings: Settings
) -> None:
    await set_budgets(db_url, owner.org_id, api_writes=4)
    async with AsyncTestClient(app=create_app(settings)) as second:
        statuses = []
        for i in range(6):
            client = owner.client if i % 2 else second
            resp = await client.delete(f"/api/v1/targets/{uuid.uuid4()}", headers=owner.headers)
            statuses.append(resp.status_code)
        assert statuses == [404, 404, 404, 404, 429, 429]


async def test_the_default_plan_has_budgets_and_every_answer_says_so(
    owner: Persona, operator: Persona
) -> None:
    # No override: the default plan's own budgets (migration 0100), on successes and errors.
    plan = (await operator.get("/operator/plans/unlimited")).json()
    assert plan["rate_api_reads"] == 25000 and plan["rate_api_writes"] == 5000
    for resp, limit in (
        (await owner.get("/api/v1/targets"), 25000),
        (await owner.get(f"/api/v1/targets/{uuid.uuid4()}"), 25000),
        (await owner.delete(f"/api/v1/targets/{uuid.uuid4()}"), 5000),
        (await owner.post("/api/v1/targets", json={}), 5000),
        (await owner.post(f"/api/v1/targets/{uuid.uuid4()}/check-now"), 1000),
        (await owner.post("/api/v1/targets/bulk-action", json={}), 150),
    ):
        assert resp.headers["x-ratelimit-limit"] == str(limit), (resp.status_code, resp.text)
        assert 0 <= int(resp.headers["x-ratelimit-remaining"]) < limit
        assert int(resp.headers["x-ratelimit-reset"]) >= int(time.time())


async def test_a_plan_without_budgets_sends_no_headers(owner: Persona, operator: Persona) -> None:
    body = {"id": f"nolimit-{uuid.uuid4().hex[:8]}", "name": "No limits"}
    assert (await operator.post("/operator/plans", json=body)).status_code == 201
    resp = await operator.put(f"/operator/orgs/{owner.org_id}/plan", json={"plan_id": body["id"]})
    assert resp.status_code == 200, resp.text
    resp = await owner.get("/api/v1/targets")
    assert resp.status_code == 200 and "x-ratelimit-limit" not in resp.headers


async def test_health_and_agent_surfaces_are_not_counted(owner: Persona, db_url: str) -> None:
    await set_budgets(db_url, owner.org_id, api_reads=1)
    for _ in range(3):
        for path in ("/healthz", "/readyz"):
            resp = await owner.get(path)
            assert resp.status_code in (200, 503) and "x-ratelimit-limit" not in resp.headers
    assert (await owner.get("/api/v1/targets")).status_code == 200


async def test_failed_authentication_is_throttled_per_address(
    settings: Settings, db_url: str, owner: Persona
) -> None:
    tight = dataclasses.replace(
        settings, accounts=dataclasses.replace(settings.accounts, auth_failures_per_minute=3)
    )
    async with AsyncTestClient(app=create_app(tight)) as client:
        bad = {"Authorization": "Bearer vgl_" + "x" * 40}
        for _ in range(3):
            assert_error(await client.get("/api/v1/targets", headers=bad), 401, "UNAUTHORIZED")
        resp = await client.get("/api/v1/targets", headers=bad)
        err = assert_error(resp, 429, "RATE_LIMITED")
        assert err["details"]["scope"] == "per_ip_auth_failures"
        assert int(resp.headers["retry-after"]) >= 1
        # While the address is throttled even a right key is refused: guessing gains nothing.
        resp = await client.get("/api/v1/targets", headers=owner.headers)
        assert_error(resp, 429, "RATE_LIMITED")


@pytest.mark.parametrize("overlap", [True, False])
async def test_reads_are_refused_alike_with_and_without_overlap(
    settings: Settings, owner: Persona, db_url: str, overlap: bool
) -> None:
    # With overlap a remembered key's read runs while the limiter's script does and the
    # refusal replaces its answer; without, it waits first. Callers cannot tell them apart.
    s = dataclasses.replace(
        settings,
        accounts=dataclasses.replace(settings.accounts, rate_limit_overlap_reads=overlap),
    )
    await set_budgets(db_url, owner.org_id, api_reads=3)
    async with AsyncTestClient(app=create_app(s)) as client:
        got = []
        for _ in range(5):  # the first looks the key up, the rest are remembered
            resp = await client.get("/api/v1/targets", headers=owner.headers)
            got.append((resp.status_code, resp.headers.get("x-ratelimit-remaining")))
        assert got == [(200, "2"), (200, "1"), (200, "0"), (429, "0"), (429, "0")]
        err = assert_error(resp, 429, "RATE_LIMITED")
        assert err["details"]["scope"] == "per_org_api_reads"
        assert "items" not in resp.text and int(resp.headers["retry-after"]) >= 1
        assert resp.headers["content-type"].startswith("application/json")
        assert resp.headers["cache-control"]
        # A read that fails on its own is refused the same way.
        resp = await client.get(f"/api/v1/targets/{uuid.uuid4()}", headers=owner.headers)
        assert_error(resp, 429, "RATE_LIMITED")
