"""/operator/agents: agent registration, its once-shown token, revocation and removal.

There is no agent route yet, so a token is proven by handing it to the real
``control_plane.core.auth.provide_agent`` dependency on a connection to the running app.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
import structlog
from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.testing import AsyncTestClient

from control_plane.app import create_app
from control_plane.core.auth import AgentContext, provide_agent
from control_plane.core.errors import ApiError
from control_plane.security import tokens
from control_plane.settings import Settings
from tests.conftest import Persona, assert_error
from tests.stack import OPERATOR_TOKEN, TOKEN_KEY

AGENT_FIELDS = {"id", "name", "region", "created_at", "last_seen_at", "revoked_at", "token_prefix"}
SOME_ID = "0190f5d2-0000-7000-8000-000000000000"

ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/operator/agents", {"name": "a1", "region": "default"}),
    ("GET", "/operator/agents", None),
    ("GET", f"/operator/agents/{SOME_ID}", None),
    ("PATCH", f"/operator/agents/{SOME_ID}", {"name": "b"}),
    ("DELETE", f"/operator/agents/{SOME_ID}", None),
    ("POST", f"/operator/agents/{SOME_ID}/revoke", None),
]


async def create_agent(operator: Persona, name: str = "probe-1", region: str = "default") -> Any:
    resp = await operator.post("/operator/agents", json={"name": name, "region": region})
    assert resp.status_code == 201, resp.text
    return resp.json()


async def authenticate(app: Litestar, token: str) -> AgentContext:
    """Run the real agent-auth dependency against ``app``'s database."""
    scope: Any = {
        "type": "http",
        "method": "POST",
        "path": "/api/agent/lease",
        "headers": [(b"authorization", f"Bearer {token}".encode())],
        "litestar_app": app,
        "state": {},
    }
    try:
        return await provide_agent(ASGIConnection(scope))
    finally:
        structlog.contextvars.clear_contextvars()


async def assert_rejected(app: Litestar, token: str) -> None:
    with pytest.raises(ApiError) as caught:
        await authenticate(app, token)
    assert (caught.value.status, caught.value.code) == (401, "UNAUTHORIZED")


@pytest.fixture
async def closed_client(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A deployment without VIGIL_OPERATOR_ADMIN_TOKEN."""
    security = dataclasses.replace(settings.security, operator_admin_token=None)
    app = create_app(dataclasses.replace(settings, security=security))
    async with AsyncTestClient(app=app) as c:
        yield c


async def test_create_agent_shows_its_token_once(operator: Persona) -> None:
    resp = await operator.post("/operator/agents", json={"name": " probe-1 ", "region": "default"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert set(body) == {*AGENT_FIELDS, "token"}
    assert resp.headers["location"] == f"/operator/agents/{body['id']}"
    token = body["token"]
    assert token.startswith("sm_agent_")
    assert body["token_prefix"] == tokens.lookup_prefix(token, tokens.AGENT_TOKEN_PREFIX)
    assert (body["name"], body["region"]) == ("probe-1", "default")
    assert body["last_seen_at"] is None
    assert body["revoked_at"] is None

    got = await operator.get(f"/operator/agents/{body['id']}")
    assert got.status_code == 200
    assert set(got.json()) == AGENT_FIELDS
    assert got.json() == {k: v for k, v in body.items() if k != "token"}
    listed = (await operator.get("/operator/agents")).json()["items"]
    assert [set(a) for a in listed] == [AGENT_FIELDS]
    assert token not in got.text + str(listed)


async def test_stored_credentials_are_prefix_and_keyed_hash(operator: Persona, db_url: str) -> None:
    body = await create_agent(operator)
    token = body["token"]
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        row = await (
            await conn.execute("SELECT prefix, hash FROM agents WHERE id = %s", [body["id"]])
        ).fetchone()
    assert row is not None
    prefix, stored_hash = row
    assert prefix == tokens.lookup_prefix(token, tokens.AGENT_TOKEN_PREFIX)
    assert bytes(stored_hash) == tokens.token_hash(TOKEN_KEY, token)
    assert tokens.verify(TOKEN_KEY, token, bytes(stored_hash))
    assert token.encode() not in bytes(stored_hash)


async def test_agent_token_authenticates_and_marks_the_agent_seen(
    operator: Persona, app: Litestar
) -> None:
    await operator.post("/operator/regions", json={"id": "eu-west", "name": "EU West"})
    body = await create_agent(operator, "probe-eu", "eu-west")
    ctx = await authenticate(app, body["token"])
    assert ctx == AgentContext(agent_id=uuid.UUID(body["id"]), region_id="eu-west", name="probe-eu")
    seen = (await operator.get(f"/operator/agents/{body['id']}")).json()
    assert seen["last_seen_at"] is not None


async def test_only_the_issued_token_authenticates(operator: Persona, app: Litestar) -> None:
    token = (await create_agent(operator))["token"]
    # Same stored prefix, different secret: the keyed hash does not match.
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    await assert_rejected(app, forged)
    # Each agent gets its own token.
    other = (await create_agent(operator, "probe-2"))["token"]
    assert other != token
    assert (await authenticate(app, other)).name == "probe-2"


async def test_revoked_agent_token_stops_working_at_once(operator: Persona, app: Litestar) -> None:
    body = await create_agent(operator)
    assert (await authenticate(app, body["token"])).name == "probe-1"

    resp = await operator.post(f"/operator/agents/{body['id']}/revoke")
    assert resp.status_code == 200, resp.text
    revoked = resp.json()
    assert set(revoked) == AGENT_FIELDS
    assert revoked["revoked_at"] is not None
    await assert_rejected(app, body["token"])

    # Revoking again is harmless and keeps the first revocation time; the agent stays listed.
    again = (await operator.post(f"/operator/agents/{body['id']}/revoke")).json()
    assert again["revoked_at"] == revoked["revoked_at"]
    listed = (await operator.get("/operator/agents")).json()
    assert [a["revoked_at"] for a in listed["items"]] == [revoked["revoked_at"]]


async def test_deleted_agent_is_gone_and_its_token_with_it(
    operator: Persona, app: Litestar
) -> None:
    body = await create_agent(operator)
    resp = await operator.delete(f"/operator/agents/{body['id']}")
    assert resp.status_code == 204, resp.text
    assert_error(await operator.get(f"/operator/agents/{body['id']}"), 404, "AGENT_NOT_FOUND")
    assert (await operator.get("/operator/agents")).json()["total"] == 0
    await assert_rejected(app, body["token"])


@pytest.mark.parametrize("region", ["nowhere", "Not A Region", "", "x" * 300])
async def test_create_agent_in_an_unknown_region_is_422(operator: Persona, region: str) -> None:
    resp = await operator.post("/operator/agents", json={"name": "a", "region": region})
    assert_error(resp, 422, "UNKNOWN_REGION", "/region")
    assert (await operator.get("/operator/agents")).json()["total"] == 0


async def test_agent_can_be_registered_in_a_disabled_region(operator: Persona) -> None:
    # Operators bring agents up before they open a region to tenants.
    await operator.post(
        "/operator/regions", json={"id": "eu-west", "name": "EU West", "enabled": False}
    )
    assert (await create_agent(operator, region="eu-west"))["region"] == "eu-west"


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"name": "", "region": "default"}, 400, "INVALID_NAME", "/name"),
        ({"name": "   ", "region": "default"}, 400, "INVALID_NAME", "/name"),
        ({"name": "n" * 101, "region": "default"}, 400, "INVALID_NAME", "/name"),
        ({"name": "a\x00b", "region": "default"}, 400, "INVALID_NAME", "/name"),
        ({"name": "a\rb", "region": "default"}, 400, "INVALID_NAME", "/name"),
        ({"name": 12, "region": "default"}, 400, "INVALID_NAME", "/name"),
        ({"name": "a"}, 400, "MISSING_FIELD", "/region"),
        ({"region": "default"}, 400, "MISSING_FIELD", "/name"),
        ({"name": "a", "region": "default", "token": "x"}, 400, "UNKNOWN_FIELD", "/token"),
        ({"name": "a", "region": 5}, 400, "VALIDATION_ERROR", "/region"),
    ],
)
async def test_create_agent_rejects_bad_bodies(
    operator: Persona, body: dict[str, Any], status: int, code: str, field: str
) -> None:
    assert_error(await operator.post("/operator/agents", json=body), status, code, field)
    assert (await operator.get("/operator/agents")).json()["total"] == 0


async def test_list_agents_filters_by_region_and_paginates(operator: Persona) -> None:
    await operator.post("/operator/regions", json={"id": "eu-west", "name": "EU West"})
    a1 = await create_agent(operator, "d1")
    e1 = await create_agent(operator, "e1", "eu-west")
    a2 = await create_agent(operator, "d2")

    everything = (await operator.get("/operator/agents")).json()
    assert [a["id"] for a in everything["items"]] == [a1["id"], e1["id"], a2["id"]]
    assert (everything["total"], everything["limit"], everything["offset"]) == (3, 50, 0)

    default = (await operator.get("/operator/agents", params={"region": "default"})).json()
    assert [a["name"] for a in default["items"]] == ["d1", "d2"]
    assert default["total"] == 2

    page = (
        await operator.get(
            "/operator/agents", params={"region": "default", "limit": 1, "offset": 1}
        )
    ).json()
    assert [a["name"] for a in page["items"]] == ["d2"]
    assert (page["total"], page["limit"], page["offset"]) == (2, 1, 1)

    nowhere = (await operator.get("/operator/agents", params={"region": "nowhere"})).json()
    assert (nowhere["items"], nowhere["total"]) == ([], 0)

    for malformed in ("Not A Region", "eu\x00west"):
        resp = await operator.get("/operator/agents", params={"region": malformed})
        assert_error(resp, 400, "INVALID_QUERY_PARAM", "/region")

    assert_error(
        await operator.get("/operator/agents", params={"limit": 0}),
        400,
        "INVALID_QUERY_PARAM",
        "/limit",
    )


async def test_patch_agent_renames_it(operator: Persona) -> None:
    body = await create_agent(operator)
    resp = await operator.patch(f"/operator/agents/{body['id']}", json={"name": "probe-renamed"})
    assert resp.status_code == 200, resp.text
    renamed = resp.json()
    assert set(renamed) == AGENT_FIELDS
    assert renamed["name"] == "probe-renamed"
    assert renamed["region"] == body["region"]
    assert renamed["token_prefix"] == body["token_prefix"]

    unchanged = await operator.patch(f"/operator/agents/{body['id']}", json={})
    assert unchanged.status_code == 200
    assert unchanged.json() == renamed
    got = await operator.get(f"/operator/agents/{body['id']}")
    assert got.json()["name"] == "probe-renamed"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"name": ""}, "INVALID_NAME", "/name"),
        ({"name": "n" * 101}, "INVALID_NAME", "/name"),
        ({"region": "eu-west"}, "UNKNOWN_FIELD", "/region"),
        ({"name": None}, "INVALID_NAME", "/name"),
        ({"name": "line\nbreak"}, "INVALID_NAME", "/name"),
    ],
)
async def test_patch_agent_rejects_bad_bodies(
    operator: Persona, body: dict[str, Any], code: str, field: str
) -> None:
    agent = await create_agent(operator)
    resp = await operator.patch(f"/operator/agents/{agent['id']}", json=body)
    assert_error(resp, 400, code, field)
    assert (await operator.get(f"/operator/agents/{agent['id']}")).json()["name"] == "probe-1"


@pytest.mark.parametrize("agent_id", [SOME_ID, "not-a-uuid", "12345", "%00"])
async def test_unknown_or_malformed_agent_id_is_404(operator: Persona, agent_id: str) -> None:
    await create_agent(operator)
    path = f"/operator/agents/{agent_id}"
    assert_error(await operator.get(path), 404, "AGENT_NOT_FOUND")
    assert_error(await operator.patch(path, json={"name": "x"}), 404, "AGENT_NOT_FOUND")
    assert_error(await operator.patch(path, json={}), 404, "AGENT_NOT_FOUND")
    assert_error(await operator.post(f"{path}/revoke"), 404, "AGENT_NOT_FOUND")
    assert_error(await operator.delete(path), 404, "AGENT_NOT_FOUND")


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_wrong_operator_token_is_401(
    client: AsyncTestClient[Litestar], method: str, path: str, body: dict[str, Any] | None
) -> None:
    for headers in ({"Authorization": "Bearer not-the-operator-token"}, {}):
        resp = await client.request(method, path, json=body, headers=headers)
        assert_error(resp, 401, "UNAUTHORIZED")


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_org_and_agent_tokens_do_not_open_the_operator_surface(
    operator: Persona, owner: Persona, method: str, path: str, body: dict[str, Any] | None
) -> None:
    agent_token = (await create_agent(operator))["token"]
    assert_error(await owner.request(method, path, json=body), 401, "UNAUTHORIZED")
    as_agent = {"Authorization": f"Bearer {agent_token}"}
    resp = await owner.client.request(method, path, json=body, headers=as_agent)
    assert_error(resp, 401, "UNAUTHORIZED")
    assert (await operator.get("/operator/agents")).json()["total"] == 1


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_operator_surface_is_404_when_the_admin_token_is_unset(
    closed_client: AsyncTestClient[Litestar],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    for headers in ({"Authorization": f"Bearer {OPERATOR_TOKEN}"}, {}):
        resp = await closed_client.request(method, path, json=body, headers=headers)
        assert_error(resp, 404, "NOT_FOUND")
