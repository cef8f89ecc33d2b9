"""Every /api/v1 operation of the OpenAPI document, called as every persona: each cell's status.

Generated from the document, so a new route cannot escape. Personas: the owner (a full-access
key); people signed in through ``/api/auth/sign-in`` with the org's ADMIN, MEMBER and VIEWER
roles (the session cookie, and the CSRF token on unsafe methods, as a browser sends them); a
read-only key (``read_only``), a scoped key (``targets:read``), a revoked key, an expired key, an
outsider (another org's full-access key) and anonymous. Path ids are the owner's own target where
a route takes one (so the outsider's 404 is a cross-org 404), else unknown ids.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from litestar import Litestar

from control_plane.core.permissions import allows, declared
from control_plane.core.roles import permissions_of_role
from control_plane.core.scopes import permissions_of
from control_plane.settings import Settings
from tests.conftest import Persona
from tests.control_plane.accounts.test_sessions import sign_in, user
from tests.stack import Stack
from tests.stack import test_settings as make_settings

DENIED = "denied"  # 403 FORBIDDEN
UNAUTH = "unauth"  # 401
ALLOWED = "allowed"  # anything the route itself answers: not 401/403, never 5xx but a 503
# (check-now with no agent serving the region answers 503 PROBE_UNAVAILABLE, as documented)
HIDDEN = "hidden"  # the outsider: allowed, but another org's ids are 404
# Endless responses (Server-Sent Events): only the refusals are checked here; what an allowed
# caller receives is tests/control_plane/events.
STREAMS = frozenset({"/api/v1/events/stream"})


@pytest.fixture
def settings(db_url: str, stack: Stack) -> Iterator[Settings]:
    # Hundreds of refused credentials from one address: the per-address throttle is tested
    # on its own (test_rate_limits.py).
    s = make_settings(db_url, stack.redis_url)
    yield dataclasses.replace(
        s, accounts=dataclasses.replace(s.accounts, auth_failures_per_minute=0)
    )


def permission_map(app: Litestar) -> dict[tuple[str, str], str | None]:
    found: dict[tuple[str, str], str | None] = {}
    for route in app.routes:
        if not route.path.startswith("/api/v1"):
            continue
        path = re.sub(r":[a-z]+}", "}", route.path)
        for handler in getattr(route, "route_handlers", []):
            for method in handler.http_methods:
                found[(method, path)] = declared(handler)
    return found


async def operations(persona: Persona) -> list[tuple[str, str]]:
    doc = (await persona.client.get("/api/openapi.json")).json()
    ops = []
    for path, item in doc["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method in item:
            if method in ("get", "post", "put", "patch", "delete"):
                ops.append((method.upper(), path))
    return sorted(ops)


def concrete(path: str, target_id: str) -> str:
    path = path.replace("{target_id}", target_id)
    return re.sub(r"{[a-z_]+}", str(uuid.uuid4()), path)


def expected(persona: str, held: frozenset[str] | None, permission: str | None) -> str:
    if persona in ("revoked", "expired", "anonymous"):
        return UNAUTH
    if permission is None or not allows(held, permission):
        return DENIED
    return HIDDEN if persona == "outsider" else ALLOWED


async def test_every_route_for_every_persona(
    app: Litestar, owner: Persona, outsider: Persona, anon: Persona, db_url: str
) -> None:
    target = await owner.post(
        "/api/v1/targets",
        json={"name": "m", "check": {"type": "http", "url": "https://example.com"}},
    )
    target_id = target.json()["id"]

    async def key(**body: Any) -> dict[str, Any]:
        resp = await owner.post("/api/v1/api-keys", json={"name": "p", **body})
        assert resp.status_code == 201, resp.text
        data: dict[str, Any] = resp.json()
        return data

    def as_persona(k: dict[str, Any]) -> Persona:
        return Persona(owner.client, {"Authorization": f"Bearer {k['key']}"}, owner.org_id)

    people = {}
    for role in ("ADMIN", "MEMBER", "VIEWER"):
        email = f"{role.lower()}@example.com"
        await user(db_url, owner.org_id, email, role)
        people[role] = await sign_in(owner, email)
    read_only, scoped, revoked, expired = (
        await key(scopes=["read_only"]),
        await key(scopes=["targets:read"]),
        await key(),
        await key(),
    )
    assert (await owner.delete(f"/api/v1/api-keys/{revoked['id']}")).status_code == 204
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE api_tokens SET expires_at = now() - interval '1 s' WHERE id = %s",
            (expired["id"],),
        )
    personas: dict[str, tuple[Persona, frozenset[str] | None]] = {
        "owner": (owner, None),
        **{
            f"{role.lower()} (session)": (person, permissions_of_role(role))
            for role, person in people.items()
        },
        "read_only key": (as_persona(read_only), permissions_of(["read_only"])),
        "scoped": (as_persona(scoped), permissions_of(["targets:read"])),
        "revoked": (as_persona(revoked), None),
        "expired": (as_persona(expired), None),
        "outsider": (outsider, None),
        "anonymous": (anon, None),
    }
    perms = permission_map(app)
    ops = await operations(owner)
    assert len(ops) >= 20
    # Each signed-in person really is signed in, in this org, with this role.
    for role, person in people.items():
        me = (await person.get("/api/auth/me")).json()
        assert me["orgs"] == [{"org_id": str(owner.org_id), "name": "Acme", "role": role}], me
    wrong = []
    counts: dict[str, int] = {}
    # Reads first, then writes, deletes last (the owner's target must outlive the others).
    order = {"GET": 0, "POST": 1, "PUT": 1, "PATCH": 1, "DELETE": 2}
    for method, path in sorted(ops, key=lambda op: (order[op[0]], op[1])):
        permission = perms.get((method, path))
        url = concrete(path, target_id)
        body = {} if method in ("POST", "PUT", "PATCH") else None
        for name, (persona, held) in personas.items():
            if name == "owner" and method == "DELETE":
                continue  # the owner's own deletes are each slice's tests
            want = expected(name, held, permission)
            if path in STREAMS and want in (ALLOWED, HIDDEN):
                continue
            resp = await persona.request(method, url, json=body)
            got = resp.status_code
            ok = {
                UNAUTH: got == 401,
                DENIED: got == 403,
                ALLOWED: got not in (401, 403) and (got < 500 or got == 503),
                HIDDEN: got not in (401, 403)
                and got < 500
                and ("{target_id}" not in path or got in (400, 404)),
            }[want]
            if not ok:
                wrong.append((name, method, path, want, got, resp.text[:200]))
            counts[want] = counts.get(want, 0) + 1
    assert not wrong, "\n".join(map(str, wrong))
    # Every kind of cell was exercised (a matrix of refusals only would prove little).
    assert all(counts.get(kind, 0) > 0 for kind in (DENIED, UNAUTH, ALLOWED, HIDDEN)), counts
