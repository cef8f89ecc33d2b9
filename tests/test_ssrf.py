"""SSRF at create time: IP-literal hosts in blocked ranges are refused unless the deployment
allows private targets."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from control_plane.app import create_app
from control_plane.settings import Settings
from tests.conftest import Persona, assert_error, make_org


@pytest.fixture
async def guarded(settings: Settings, db_url: str) -> AsyncIterator[Persona]:
    security = dataclasses.replace(settings.security, allow_private_targets=False)
    app = create_app(dataclasses.replace(settings, security=security))
    async with AsyncTestClient(app=app) as client:
        org_id, token = await make_org(db_url, "Guarded")
        yield Persona(client, {"Authorization": f"Bearer {token}"}, org_id)


BLOCKED: list[tuple[dict[str, Any], str, str]] = [
    (
        {"type": "http", "url": "http://169.254.169.254/latest/meta-data"},
        "/check/url",
        "169.254.0.0/16",
    ),
    (
        {"type": "http", "url": "http://[::ffff:10.0.0.1]/"},
        "/check/url",
        "10.0.0.0/8 (embedded in ::ffff:a00:1)",
    ),
    (
        {"type": "http", "url": "https://[64:ff9b::a9fe:a9fe]/"},
        "/check/url",
        "169.254.0.0/16 (embedded in 64:ff9b::a9fe:a9fe)",
    ),
    ({"type": "tcp", "host": "100.64.0.1", "port": 22}, "/check/host", "100.64.0.0/10"),
    ({"type": "tcp", "host": "127.0.0.1", "port": 5432}, "/check/host", "127.0.0.0/8"),
    (
        {"type": "dns", "name": "example.com", "server": "192.168.1.1"},
        "/check/server",
        "192.168.0.0/16",
    ),
]


@pytest.mark.parametrize(("check", "field", "blocked"), BLOCKED)
async def test_blocked_ip_literals_are_refused_on_create_and_patch(
    guarded: Persona, check: dict[str, Any], field: str, blocked: str
) -> None:
    resp = await guarded.post("/api/v1/targets", json={"name": "x", "check": check})
    err = assert_error(resp, 400, "SSRF_BLOCKED", field)
    assert err["details"]["range"] == blocked
    ok = await guarded.post(
        "/api/v1/targets",
        json={"name": "ok", "check": {"type": "http", "url": "https://example.com"}},
    )
    assert ok.status_code == 201, ok.text
    resp = await guarded.patch(f"/api/v1/targets/{ok.json()['id']}", json={"check": check})
    assert_error(resp, 400, "SSRF_BLOCKED", field)
    assert (await guarded.get("/api/v1/targets")).json()["total"] == 1


async def test_public_literals_and_names_pass(guarded: Persona) -> None:
    for url in ("http://93.184.216.34/", "https://example.com/", "http://localhost:8080/"):
        resp = await guarded.post(
            "/api/v1/targets", json={"name": "x", "check": {"type": "http", "url": url}}
        )
        # Names are judged by the agent at connect time, when they resolve.
        assert resp.status_code == 201, resp.text


async def test_allow_private_targets_turns_the_guard_off(owner: Persona) -> None:
    for check, _, _ in BLOCKED:
        resp = await owner.post("/api/v1/targets", json={"name": "x", "check": check})
        assert resp.status_code == 201, resp.text
