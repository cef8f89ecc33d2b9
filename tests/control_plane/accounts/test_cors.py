"""CORS per the reference: off by default, /api/v1 only, never on /healthz and /readyz."""

from __future__ import annotations

import dataclasses

from litestar.testing import AsyncTestClient

from control_plane.app import create_app
from control_plane.settings import CorsSettings, Settings
from tests.conftest import Persona

ORIGIN = "https://dash.example.com"
PREFLIGHT = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}


def with_cors(settings: Settings, **kw: object) -> Settings:
    return dataclasses.replace(settings, cors=CorsSettings(enabled=True, **kw))  # type: ignore[arg-type]


async def test_off_by_default(owner: Persona) -> None:
    resp = await owner.get("/api/v1/targets", headers={"Origin": ORIGIN})
    assert resp.status_code == 200
    assert not any(k.lower().startswith("access-control-") for k in resp.headers)
    resp = await owner.client.options("/api/v1/targets", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in resp.headers


async def test_allowed_origin_preflight_and_simple_request(
    settings: Settings, owner: Persona
) -> None:
    app = create_app(
        with_cors(settings, allowed_origins=(ORIGIN,), allowed_methods=("GET", "POST"))
    )
    async with AsyncTestClient(app=app) as client:
        resp = await client.options("/api/v1/targets", headers=PREFLIGHT)
        assert resp.status_code == 204, resp.text
        assert resp.headers["access-control-allow-origin"] == ORIGIN
        assert set(resp.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST"}
        assert "content-type" in resp.headers["access-control-allow-headers"]
        resp = await client.get("/api/v1/targets", headers={**owner.headers, "Origin": ORIGIN})
        assert resp.status_code == 200
        assert resp.headers["access-control-allow-origin"] == ORIGIN
        # Another origin: refused preflight, no allow-origin on its requests.
        evil = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
        assert (await client.options("/api/v1/targets", headers=evil)).status_code == 400
        resp = await client.get("/api/v1/targets", headers={**owner.headers, **evil})
        assert "access-control-allow-origin" not in resp.headers
        # Health never carries CORS headers.
        for path in ("/healthz", "/readyz"):
            for resp in (
                await client.get(path, headers={"Origin": ORIGIN}),
                await client.options(path, headers=PREFLIGHT),
            ):
                assert not any(k.lower().startswith("access-control-") for k in resp.headers)


async def test_any_origin(settings: Settings) -> None:
    app = create_app(with_cors(settings, allow_any_origin=True))
    async with AsyncTestClient(app=app) as client:
        resp = await client.options(
            "/api/v1/targets",
            headers={"Origin": "https://anything.example", "Access-Control-Request-Method": "GET"},
        )
        assert resp.status_code == 204
        assert resp.headers["access-control-allow-origin"] == "*"
