"""Every tenant route declares what it needs, and the guard holds callers to it.

Generated from the app's routes, so a new route cannot escape: one that declares no permission
fails here (and is refused at run time).
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from control_plane.core.permissions import PERMISSIONS, allows, declared
from control_plane.domain.orgs.service import create_token
from tests.conftest import assert_error, make_org
from tests.stack import TOKEN_KEY


def tenant_handlers(app: Litestar) -> list[tuple[str, str, Any]]:
    found = []
    for route in app.routes:
        if not route.path.startswith("/api/v1"):
            continue
        for handler in getattr(route, "route_handlers", []):
            for method in handler.http_methods:
                if method in ("HEAD", "OPTIONS"):
                    continue
                found.append((method, route.path, handler))
    return found


def test_every_tenant_route_declares_a_known_permission(app: Litestar) -> None:
    routes = tenant_handlers(app)
    assert len(routes) >= 15
    missing = [(m, p) for m, p, h in routes if declared(h) is None]
    assert not missing, f"routes without opt=requires(...): {missing}"
    unknown = [(m, p, declared(h)) for m, p, h in routes if declared(h) not in PERMISSIONS]
    assert not unknown, unknown
    # Reads ask for :read, writes for :write (a GET never needs write, nor a POST only read).
    for method, path, handler in routes:
        action = declared(handler).rpartition(":")[2]  # type: ignore[union-attr]
        if method == "GET":
            assert action == "read", (method, path)


def test_write_implies_read_and_none_is_everything() -> None:
    assert allows(None, "targets:write")
    assert allows(frozenset({"targets:write"}), "targets:read")
    assert not allows(frozenset({"targets:read"}), "targets:write")
    assert not allows(frozenset({"channels:write"}), "targets:read")


@pytest.mark.parametrize(
    ("held", "method", "path", "status"),
    [
        (frozenset({"targets:read"}), "GET", "/api/v1/targets", 200),
        (frozenset({"targets:read"}), "POST", "/api/v1/targets", 403),
        (frozenset({"incidents:read"}), "GET", "/api/v1/targets", 403),
        (frozenset({"incidents:read"}), "GET", "/api/v1/incidents", 200),
        (frozenset(), "GET", "/api/v1/regions", 403),
    ],
)
async def test_the_guard_holds_a_limited_key_to_its_permissions(
    client: AsyncTestClient[Litestar],
    db_url: str,
    held: frozenset[str],
    method: str,
    path: str,
    status: int,
) -> None:
    org_id = await make_org(db_url, "Scoped")
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        key = await create_token(conn, TOKEN_KEY, org_id[0], "limited", permissions=held)
    headers = {"Authorization": f"Bearer {key.token}"}
    body = {"name": "x", "check": {"type": "http", "url": "https://example.com"}}
    resp = await client.request(
        method, path, headers=headers, json=body if method == "POST" else None
    )
    if status == 403:
        err = assert_error(resp, 403, "FORBIDDEN")
        assert err["details"]["permission"]
    else:
        assert resp.status_code == status, resp.text
