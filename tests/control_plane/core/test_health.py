"""/healthz and /readyz against the real stack, and against dependencies that are down."""

from __future__ import annotations

import dataclasses
import socket
from urllib.parse import urlsplit, urlunsplit

from litestar.testing import AsyncTestClient

from control_plane.app import create_app
from control_plane.settings import Settings
from tests.conftest import Persona, assert_error


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


async def test_healthz_answers_ok(anon: Persona) -> None:
    resp = await anon.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}


async def test_readyz_answers_ok_when_postgres_and_redis_are_up(anon: Persona) -> None:
    resp = await anon.get("/readyz")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"status": "ok", "checks": {"postgres": "ok", "redis": "ok"}}


async def test_readyz_is_503_dependency_down_when_redis_is_unreachable(settings: Settings) -> None:
    port = closed_port()
    down = dataclasses.replace(
        settings, redis=dataclasses.replace(settings.redis, url=with_port(settings.redis.url, port))
    )
    async with AsyncTestClient(app=create_app(down)) as client:
        resp = await client.get("/readyz")
    err = assert_error(resp, 503, "DEPENDENCY_DOWN")
    assert err["details"] == {"checks": {"postgres": "ok", "redis": "down"}}
    assert "redis" in err["message"] and "postgres" not in err["message"]
    assert str(port) not in resp.text  # the reason is logged, not shown to the caller
    assert err["trace_id"] == resp.headers["x-request-id"]


async def test_readyz_is_503_dependency_down_when_postgres_is_unreachable(
    settings: Settings,
) -> None:
    port = closed_port()
    down = dataclasses.replace(
        settings,
        database=dataclasses.replace(
            settings.database, url=with_port(settings.database.url, port), pool_min=1
        ),
    )
    async with AsyncTestClient(app=create_app(down)) as client:
        resp = await client.get("/readyz")
    err = assert_error(resp, 503, "DEPENDENCY_DOWN")
    assert err["details"] == {"checks": {"postgres": "down", "redis": "ok"}}
    assert str(port) not in resp.text
