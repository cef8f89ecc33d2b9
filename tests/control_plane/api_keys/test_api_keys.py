"""/api/v1/api-keys: shown once, listed masked, scoped, expiring, revoked at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
from litestar.testing import AsyncTestClient

from control_plane.app import create_app
from control_plane.settings import Settings
from tests.conftest import Persona, assert_error

TARGET = {"name": "x", "check": {"type": "http", "url": "https://example.com"}}


async def new_key(owner: Persona, **body: object) -> dict[str, object]:
    resp = await owner.post("/api/v1/api-keys", json={"name": "k", **body})
    assert resp.status_code == 201, resp.text
    data: dict[str, object] = resp.json()
    return data


def bearer(key: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_create_shows_the_key_once_and_lists_it_masked(owner: Persona) -> None:
    created = await new_key(owner, scopes=["targets:read"])
    key = str(created["key"])
    assert key.startswith("vgl_") and len(key) > 40
    assert created["scopes"] == ["targets:read"]
    listed = (await owner.get("/api/v1/api-keys")).json()
    assert listed["total"] == 2  # the persona's own key and the new one
    mine = next(k for k in listed["items"] if k["id"] == created["id"])
    assert mine["key"] != key and mine["key"].endswith(key[-4:]) and "…" in mine["key"]
    assert mine["last_used_at"] is None and mine["expires_at"] is None
    one = (await owner.get(f"/api/v1/api-keys/{created['id']}")).json()
    assert one == mine
    # Using it stamps last_used_at.
    assert (await owner.get("/api/v1/targets", headers=bearer(key))).status_code == 200
    again = (await owner.get(f"/api/v1/api-keys/{created['id']}")).json()
    assert again["last_used_at"] is not None


async def test_the_whole_key_is_never_read_back_nor_audited(owner: Persona, db_url: str) -> None:
    created = await new_key(owner)
    key = str(created["key"])
    listed = (await owner.get("/api/v1/api-keys?include_revoked=true")).text
    assert key not in listed
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        rows = await (await conn.execute("SELECT before, after FROM audit_log")).fetchall()
    assert rows and key not in str(rows) and key[4:] not in str(rows)


async def test_scoped_key_is_held_to_its_scopes(owner: Persona) -> None:
    created = await new_key(owner, scopes=["targets:read"])
    h = bearer(created["key"])
    assert (await owner.get("/api/v1/targets", headers=h)).status_code == 200
    assert_error(await owner.post("/api/v1/targets", json=TARGET, headers=h), 403, "FORBIDDEN")
    assert_error(await owner.get("/api/v1/incidents", headers=h), 403, "FORBIDDEN")
    assert_error(await owner.get("/api/v1/api-keys", headers=h), 403, "FORBIDDEN")


async def test_read_only_reads_everything_and_writes_nothing(owner: Persona) -> None:
    h = bearer((await new_key(owner, scopes=["read_only"]))["key"])
    assert (await owner.get("/api/v1/targets", headers=h)).status_code == 200
    assert (await owner.get("/api/v1/incidents", headers=h)).status_code == 200
    assert (await owner.get("/api/v1/api-keys", headers=h)).status_code == 200
    assert_error(await owner.post("/api/v1/targets", json=TARGET, headers=h), 403, "FORBIDDEN")
    assert_error(
        await owner.post("/api/v1/api-keys", json={"name": "n"}, headers=h), 403, "FORBIDDEN"
    )


async def test_a_key_never_exceeds_its_creator(owner: Persona) -> None:
    h = bearer((await new_key(owner, scopes=["api_keys:write", "targets:read"]))["key"])
    ok = await owner.post(
        "/api/v1/api-keys", json={"name": "sub", "scopes": ["targets:read"]}, headers=h
    )
    assert ok.status_code == 201, ok.text
    for scopes in (["targets:write"], ["read_only"], ["full_access"]):
        resp = await owner.post(
            "/api/v1/api-keys", json={"name": "sub", "scopes": scopes}, headers=h
        )
        assert_error(resp, 403, "SCOPE_EXCEEDS_CREATOR", "/scopes")
    # Omitted scopes mean full access: more than this key holds.
    resp = await owner.post("/api/v1/api-keys", json={"name": "sub"}, headers=h)
    assert_error(resp, 403, "SCOPE_EXCEEDS_CREATOR")


async def test_revoked_key_is_refused_at_once(owner: Persona) -> None:
    created = await new_key(owner)
    h = bearer(created["key"])
    assert (await owner.get("/api/v1/targets", headers=h)).status_code == 200  # now cached
    assert (await owner.delete(f"/api/v1/api-keys/{created['id']}")).status_code == 204
    assert_error(await owner.get("/api/v1/targets", headers=h), 401, "UNAUTHORIZED")
    # Gone for reads and a second revocation; still listed with include_revoked.
    for resp in (
        await owner.delete(f"/api/v1/api-keys/{created['id']}"),
        await owner.get(f"/api/v1/api-keys/{created['id']}"),
    ):
        assert_error(resp, 404, "API_KEY_NOT_FOUND")
    listed = (await owner.get("/api/v1/api-keys")).json()
    assert created["id"] not in [k["id"] for k in listed["items"]]
    listed = (await owner.get("/api/v1/api-keys?include_revoked=true")).json()
    assert created["id"] in [k["id"] for k in listed["items"]]


async def test_revocation_holds_at_once_on_another_replica(
    owner: Persona, settings: Settings
) -> None:
    other_app = create_app(settings)
    created = await new_key(owner)
    h = bearer(created["key"])
    async with AsyncTestClient(app=other_app) as other:
        # The other replica remembers the key ...
        assert (await other.get("/api/v1/targets", headers=h)).status_code == 200
        # ... this one revokes it ...
        assert (await owner.delete(f"/api/v1/api-keys/{created['id']}")).status_code == 204
        # ... and the other refuses it on the next request.
        resp = await other.get("/api/v1/targets", headers=h)
        assert_error(resp, 401, "UNAUTHORIZED")


async def test_expired_key_is_refused(owner: Persona, db_url: str) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=2)
    created = await new_key(owner, expires_at=soon.isoformat())
    assert created["expires_at"] is not None
    h = bearer(created["key"])
    assert (await owner.get("/api/v1/targets", headers=h)).status_code == 200
    # Past its end of life (moved into the past rather than waited for) it is refused, both
    # from the process' memory and from the database.
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = %s",
            (created["id"],),
        )
    await asyncio.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()))
    err = assert_error(await owner.get("/api/v1/targets", headers=h), 401, "UNAUTHORIZED")
    assert "expired" in err["message"]
    err = assert_error(await owner.get("/api/v1/targets", headers=h), 401, "UNAUTHORIZED")
    assert "expired" in err["message"]


async def test_bad_input(owner: Persona) -> None:
    cases = [
        ({"name": ""}, "/name"),
        ({"name": "x" * 101}, "/name"),
        ({"name": "k", "scopes": []}, "/scopes"),
        ({"name": "k", "scopes": ["targets:admin"]}, "/scopes/0"),
        ({"name": "k", "scopes": ["read_only", ""]}, "/scopes/1"),
        ({"name": "k", "expires_at": "2001-01-01T00:00:00Z"}, "/expires_at"),
        ({"name": "k", "extra": 1}, None),
    ]
    for body, field in cases:
        resp = await owner.post("/api/v1/api-keys", json=body)
        assert resp.status_code == 400, (body, resp.text)
        if field:
            assert resp.json()["error"]["field"] == field, (body, resp.text)


async def test_another_orgs_key_is_404(owner: Persona, outsider: Persona) -> None:
    created = await new_key(owner)
    for resp in (
        await outsider.get(f"/api/v1/api-keys/{created['id']}"),
        await outsider.delete(f"/api/v1/api-keys/{created['id']}"),
        await outsider.get("/api/v1/api-keys/not-a-uuid"),
    ):
        assert_error(resp, 404, "API_KEY_NOT_FOUND")
    assert (await owner.get("/api/v1/targets", headers=bearer(created["key"]))).status_code == 200


async def test_org_tokens_made_before_scopes_stay_full_access(owner: Persona) -> None:
    listed = (await owner.get("/api/v1/api-keys")).json()
    assert [k["scopes"] for k in listed["items"]] == [["full_access"]]
    assert (await owner.post("/api/v1/targets", json=TARGET)).status_code == 201


def test_the_documented_scopes_are_the_known_ones() -> None:
    from control_plane.core.scopes import SCOPES
    from control_plane.domain.api_keys.schemas import SCOPE_NAMES

    assert SCOPE_NAMES == SCOPES
