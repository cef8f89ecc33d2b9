"""The public surface's rendered cache (ETag/304, edits seen at once, one build per burst) and
its own limits (per-address budget, per-process cap) that never touch the tenant API."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from control_plane.app import create_app
from control_plane.core.errors import ApiError
from control_plane.domain.public import cache, limits
from control_plane.settings import Settings
from tests.conftest import Persona, assert_error, make_org
from tests.control_plane.status_pages.helpers import PAGES, add_component, make_page, make_target
from tests.stack import Stack

PUB = "/api/public/v1/pages"


async def _page(owner: Persona) -> dict[str, Any]:
    page = await make_page(owner, "acme")
    await add_component(owner, page["id"], await make_target(owner, "api"), public_name="API")
    return page


async def test_etag_answers_304_until_the_page_changes(
    owner: Persona, anon: Persona, db_url: str
) -> None:
    page = await _page(owner)
    for path in (f"{PUB}/acme/status", "/status/acme", "/status/acme?fragment=1"):
        first = await anon.get(path)
        assert first.status_code == 200, path
        etag = first.headers["etag"]
        assert etag.startswith('"') and etag.endswith('"')
        again = await anon.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304, path
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert "public" in again.headers["cache-control"]
        weak = await anon.get(path, headers={"If-None-Match": f'"other", W/{etag}'})
        assert weak.status_code == 304
        other = await anon.get(path, headers={"If-None-Match": '"other"'})
        assert other.status_code == 200 and other.content == first.content
    before = (await anon.get(f"{PUB}/acme/status")).headers["etag"]
    resp = await owner.patch(f"{PAGES}/{page['id']}", json={"name": "Renamed status"})
    assert resp.status_code == 200
    after = await anon.get(f"{PUB}/acme/status", headers={"If-None-Match": before})
    assert after.status_code == 200
    assert after.json()["page"]["name"] == "Renamed status"
    assert after.headers["etag"] != before
    assert "Renamed status" in (await anon.get("/status/acme")).text


async def test_a_burst_builds_once(stack: Stack) -> None:
    """Concurrent callers of a cold key share one build (the test client runs requests one at
    a time, so this drives the cache directly, on the real Redis)."""
    redis = Redis.from_url(stack.redis_url)
    prefix = f"t{uuid.uuid4().hex[:10]}:"
    builds: list[int] = []

    async def build() -> cache.Rendered:
        builds.append(1)
        await asyncio.sleep(0.05)
        return cache.rendered(200, "application/json", b"{}")

    try:
        answers = await asyncio.gather(
            *(cache.get(redis, prefix, "json:a", build) for _ in range(20))
        )
        assert builds == [1]
        assert len({a.etag for a in answers}) == 1
        # Another process (an empty memo) finds it in Redis and builds nothing.
        cache._memo.clear()
        assert (await cache.get(redis, prefix, "json:a", build)).body == b"{}"
        assert builds == [1]
        # An edit (the generation moves on): built again.
        await cache.invalidate(redis, prefix)
        await cache.get(redis, prefix, "json:a", build)
        assert builds == [1, 1]
    finally:
        await redis.aclose()


async def test_unknown_page_stays_404_and_a_new_page_shows_at_once(
    owner: Persona, anon: Persona
) -> None:
    assert_error(await anon.get(f"{PUB}/acme/status"), 404, "PAGE_NOT_FOUND")
    assert (await anon.get("/status/acme")).status_code == 404
    await _page(owner)
    assert (await anon.get(f"{PUB}/acme/status")).status_code == 200
    assert (await anon.get("/status/acme")).status_code == 200


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    pages = dataclasses.replace(
        settings.status_pages, public_rate_per_minute=3, public_max_inflight=2
    )
    app = create_app(dataclasses.replace(settings, status_pages=pages))
    async with AsyncTestClient(app=app) as c:
        yield c


async def _tenant(client: AsyncTestClient[Litestar], db_url: str) -> Persona:
    org_id, token = await make_org(db_url, "Acme")
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO plan_overrides (org_id, rate_api_reads) VALUES (%s, 100)", (org_id,)
        )
    return Persona(client, {"Authorization": f"Bearer {token}"}, org_id)


async def test_per_address_budget_is_its_own_and_spares_the_tenant_api(
    limited: AsyncTestClient[Litestar], db_url: str
) -> None:
    owner = await _tenant(limited, db_url)
    await _page(owner)
    first = await owner.get(PAGES)
    left = int(first.headers["x-ratelimit-remaining"])
    for path in (f"{PUB}/acme/status", "/status/acme", f"{PUB}/acme/badge.svg"):
        assert (await limited.get(path)).status_code == 200
    resp = await limited.get("/status/acme")
    err = assert_error(resp, 429, "RATE_LIMITED")
    assert err["details"]["scope"] == "per_ip_public"
    assert 1 <= int(resp.headers["retry-after"]) <= 60
    assert resp.headers["cache-control"] == "no-store"
    assert_error(await limited.get(f"{PUB}/acme/status"), 429, "RATE_LIMITED")
    # The same address on the tenant API: its own budget, untouched by the public requests.
    after = await owner.get(PAGES)
    assert after.status_code == 200
    assert int(after.headers["x-ratelimit-remaining"]) == left - 1


async def test_in_flight_cap_answers_503_and_spares_the_tenant_api(settings: Settings) -> None:
    """The middleware on its own (the test client runs requests one at a time): two public
    requests held in flight fill a cap of 2; a third is 503, a tenant request passes."""
    pages = dataclasses.replace(settings.status_pages, public_max_inflight=2)
    res = SimpleNamespace(
        settings=dataclasses.replace(settings, status_pages=pages),
        redis=Redis.from_url(settings.redis.url),
    )
    release, both_in = asyncio.Event(), asyncio.Event()
    inside: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        inside.append(scope["path"])
        if len(inside) == 2:
            both_in.set()
        if scope["path"] != "/api/v1/targets":
            await release.wait()

    mw = limits.public_limits_middleware(inner)

    def call(path: str) -> Any:
        scope = {
            "type": "http",
            "path": path,
            "client": ("127.0.0.1", 1),
            "litestar_app": SimpleNamespace(state=SimpleNamespace(resources=res)),
        }
        return mw(scope, None, None)  # type: ignore[arg-type]

    try:
        held = [asyncio.ensure_future(call("/status/acme")), asyncio.ensure_future(call("/"))]
        await both_in.wait()
        with pytest.raises(ApiError) as refused:
            await call("/api/public/v1/pages/acme/status")
        assert (refused.value.status, refused.value.code) == (503, "PUBLIC_BUSY")
        assert refused.value.headers["Retry-After"] == "1"
        await call("/api/v1/targets")  # the tenant API is not capped
        assert inside[-1] == "/api/v1/targets"
        release.set()
        await asyncio.gather(*held)
        await call("/status/acme")  # room again
    finally:
        await res.redis.aclose()


def test_which_paths_are_public() -> None:
    for path in ("/", "/status", "/status/acme", "/m/vgs_x", "/api/public/v1/pages/a/status"):
        assert limits.is_public(path), path
    for path in ("/api/v1/status-pages", "/statusx", "/healthz", "/api/auth/login", "/mx"):
        assert not limits.is_public(path), path


async def test_reference_paths_serve_the_custom_domains_page(
    owner: Persona, anon: Persona, db_url: str
) -> None:
    """The reference's one-page paths answer on a verified custom domain, 404 elsewhere."""
    page = await _page(owner)
    target = (await owner.get(f"{PAGES}/{page['id']}/components")).json()
    tid = (target["items"] if isinstance(target, dict) else target)[0]["target_id"]
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE status_pages SET custom_domain = 'status.example.com',"
            " domain_verified_at = now() WHERE id = %s",
            (page["id"],),
        )
    host = {"Host": "status.example.com"}
    slugged = (await anon.get(f"{PUB}/acme/status")).json()
    aliased = await anon.get("/api/public/v1/status", headers=host)
    assert aliased.status_code == 200 and aliased.json() == slugged
    assert "API" in (await anon.get("/status", headers=host)).text
    for path in (
        "/api/public/v1/incidents",
        "/api/public/v1/maintenance",
        "/api/public/v1/incidents.rss",
        "/api/public/v1/badge.svg",
        f"/api/public/v1/components/{tid}/history?days=7",
    ):
        assert (await anon.get(path, headers=host)).status_code == 200, path
    assert_error(
        await anon.get(f"/api/public/v1/incidents/{uuid.uuid4()}", headers=host),
        404,
        "INCIDENT_NOT_FOUND",
    )
    assert (await anon.get(f"/status/incidents/{uuid.uuid4()}", headers=host)).status_code == 404
    other = {"Host": "other.example.com"}
    assert_error(await anon.get("/api/public/v1/status", headers=other), 404, "PAGE_NOT_FOUND")
    assert_error(await anon.get("/api/public/v1/incidents"), 404, "PAGE_NOT_FOUND")
    assert (await anon.get("/status", headers=other)).status_code == 404
