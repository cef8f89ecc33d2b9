"""Users, roles and browser sessions: sign-in cookie flags, CSRF, roles, members, sign-out."""

from __future__ import annotations

import logging
from http.cookies import SimpleCookie
from typing import Any

import psycopg
import pytest

from control_plane.domain.users.service import add_member, create_user
from tests.conftest import Persona, assert_error

PASSWORD = "correct horse battery staple"
TARGET = {"name": "x", "check": {"type": "http", "url": "https://example.com"}}


async def user(db_url: str, org_id: Any, email: str, role: str = "OWNER") -> Any:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        uid = await create_user(conn, email, email.split("@")[0], PASSWORD)
        if org_id is not None:
            await add_member(conn, org_id, uid, role)
    return uid


def cookies_of(resp: Any) -> dict[str, Any]:
    jar: dict[str, Any] = {}
    for raw in resp.headers.get_list("set-cookie"):
        parsed = SimpleCookie()
        parsed.load(raw)
        for name, morsel in parsed.items():
            jar[name] = (morsel, raw)
    return jar


async def sign_in(owner: Persona, email: str, **extra: Any) -> Persona:
    owner.client.cookies.clear()
    resp = await owner.client.post(
        "/api/auth/sign-in", json={"email": email, "password": PASSWORD, **extra}
    )
    assert resp.status_code == 200, resp.text
    token = cookies_of(resp)["vigil_session"][0].value
    owner.client.cookies.clear()
    headers = {"Cookie": f"vigil_session={token}", "X-CSRF-Token": resp.json()["csrf_token"]}
    return Persona(owner.client, headers, owner.org_id)


async def test_sign_in_sets_a_secure_cookie(owner: Persona, db_url: str) -> None:
    await user(db_url, owner.org_id, "ann@example.com")
    resp = await owner.client.post(
        "/api/auth/sign-in", json={"email": "Ann@Example.com", "password": PASSWORD}
    )
    assert resp.status_code == 200, resp.text
    me = resp.json()
    assert me["email"] == "ann@example.com" and me["active_org_id"] == str(owner.org_id)
    assert me["orgs"] == [{"org_id": str(owner.org_id), "name": "Acme", "role": "OWNER"}]
    jar = cookies_of(resp)
    session, raw = jar["vigil_session"]
    assert session.value.startswith("vgs_")
    low = raw.lower()
    assert "httponly" in low and "secure" in low and "samesite=lax" in low and "path=/" in low
    csrf, raw_csrf = jar["vigil_csrf"]
    assert csrf.value == me["csrf_token"] and "httponly" not in raw_csrf.lower()
    assert PASSWORD not in resp.text


async def test_wrong_password_and_unknown_email_are_the_same_401(
    owner: Persona, db_url: str
) -> None:
    await user(db_url, owner.org_id, "bob@example.com")
    for body in (
        {"email": "bob@example.com", "password": "wrong password!"},
        {"email": "nobody@example.com", "password": PASSWORD},
    ):
        resp = await owner.client.post("/api/auth/sign-in", json=body)
        assert_error(resp, 401, "INVALID_CREDENTIALS")


async def test_csrf_is_required_on_unsafe_methods(owner: Persona, db_url: str) -> None:
    await user(db_url, owner.org_id, "cat@example.com")
    me = await sign_in(owner, "cat@example.com")
    assert (await me.get("/api/v1/targets", headers={"X-CSRF-Token": ""})).status_code == 200
    no_csrf = {"Cookie": me.headers["Cookie"]}
    resp = await owner.client.post("/api/v1/targets", json=TARGET, headers=no_csrf)
    assert_error(resp, 403, "CSRF_FAILED")
    bad = {**no_csrf, "X-CSRF-Token": "guess"}
    assert_error(
        await owner.client.post("/api/v1/targets", json=TARGET, headers=bad), 403, "CSRF_FAILED"
    )
    assert (await me.post("/api/v1/targets", json=TARGET)).status_code == 201
    # The audit log names the user's session.
    log = (await owner.get("/api/v1/audit-log?action=target.create")).json()
    assert log["items"][0]["actor_type"] == "session"


@pytest.mark.parametrize(
    ("role", "read", "write_target", "members_write", "audit"),
    [
        ("OWNER", 200, 201, True, 200),
        ("ADMIN", 200, 201, True, 200),
        ("MEMBER", 200, 201, False, 403),
        ("VIEWER", 200, 403, False, 403),
    ],
)
async def test_roles(
    owner: Persona,
    db_url: str,
    role: str,
    read: int,
    write_target: int,
    members_write: bool,
    audit: int,
) -> None:
    await user(db_url, owner.org_id, "boss@example.com", "OWNER")
    await user(db_url, owner.org_id, "who@example.com", role)
    me = await sign_in(owner, "who@example.com")
    assert (await me.get("/api/v1/targets")).status_code == read
    assert (await me.post("/api/v1/targets", json=TARGET)).status_code == write_target
    assert (await me.get("/api/v1/audit-log")).status_code == audit
    members = (await me.get("/api/v1/members")).json()["items"]
    assert {m["role"] for m in members} == {"OWNER", role}
    boss = next(m for m in members if m["email"] == "boss@example.com")
    resp = await me.patch(f"/api/v1/members/{boss['user_id']}", json={"role": "OWNER"})
    assert resp.status_code == (200 if role == "OWNER" else 403), resp.text
    # A key made by a user never exceeds their role.
    resp = await me.post("/api/v1/api-keys", json={"name": "k", "scopes": ["targets:write"]})
    assert resp.status_code == (201 if role != "VIEWER" else 403), resp.text
    resp = await me.post("/api/v1/api-keys", json={"name": "k", "scopes": ["status_pages:write"]})
    assert resp.status_code == (201 if role in ("OWNER", "ADMIN") else 403), resp.text
    _ = members_write


async def test_members_and_the_last_owner(owner: Persona, outsider: Persona, db_url: str) -> None:
    boss = await user(db_url, owner.org_id, "boss@example.com", "OWNER")
    helper = await user(db_url, owner.org_id, "help@example.com", "ADMIN")
    me = await sign_in(owner, "boss@example.com")
    assert_error(
        await me.patch(f"/api/v1/members/{boss}", json={"role": "ADMIN"}), 409, "LAST_OWNER"
    )
    assert_error(await me.delete(f"/api/v1/members/{boss}"), 409, "LAST_OWNER")
    resp = await me.patch(f"/api/v1/members/{helper}", json={"role": "VIEWER"})
    assert resp.status_code == 200 and resp.json()["role"] == "VIEWER"
    assert (await me.delete(f"/api/v1/members/{helper}")).status_code == 204
    assert_error(await me.delete(f"/api/v1/members/{helper}"), 404, "MEMBER_NOT_FOUND")
    # Another org's member is a 404; bad input is a 400.
    assert_error(await outsider.delete(f"/api/v1/members/{boss}"), 404, "MEMBER_NOT_FOUND")
    assert_error(
        await me.patch("/api/v1/members/nope", json={"role": "ADMIN"}), 404, "MEMBER_NOT_FOUND"
    )
    resp = await me.patch(f"/api/v1/members/{boss}", json={"role": "KING"})
    assert resp.status_code == 400


async def test_active_org_and_sign_out(owner: Persona, outsider: Persona, db_url: str) -> None:
    uid = await user(db_url, owner.org_id, "two@example.com", "VIEWER")
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await add_member(conn, outsider.org_id, uid, "OWNER")
    me = await sign_in(owner, "two@example.com")
    assert (await me.post("/api/v1/targets", json=TARGET)).status_code == 403  # viewer in Acme
    resp = await me.post("/api/auth/active-org", json={"org_id": str(outsider.org_id)})
    assert resp.status_code == 200 and resp.json()["active_org_id"] == str(outsider.org_id)
    assert (await me.post("/api/v1/targets", json=TARGET)).status_code == 201  # owner there
    resp = await me.post(
        "/api/auth/active-org", json={"org_id": "01a24d01-0990-769b-88ae-4f8eca10ab51"}
    )
    assert_error(resp, 403, "NOT_A_MEMBER")
    no_csrf = {"Cookie": me.headers["Cookie"]}
    assert_error(await owner.client.post("/api/auth/sign-out", headers=no_csrf), 403, "CSRF_FAILED")
    resp = await me.post("/api/auth/sign-out")
    assert resp.status_code == 204
    assert_error(await me.get("/api/v1/targets"), 401, "UNAUTHORIZED")
    assert_error(await me.get("/api/auth/me"), 401, "UNAUTHORIZED")


async def test_passwords_never_stored_or_logged(
    owner: Persona, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await user(db_url, owner.org_id, "dan@example.com")
    me = await sign_in(owner, "dan@example.com")
    await me.get("/api/v1/targets")
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        row = await (await conn.execute("SELECT password_hash FROM users")).fetchone()
        audit = await (await conn.execute("SELECT before, after FROM audit_log")).fetchall()
    assert row is not None and row[0].startswith("$argon2id$") and PASSWORD not in row[0]
    assert PASSWORD not in str(audit)
    assert PASSWORD not in caplog.text
    session_token = me.headers["Cookie"].split("=", 1)[1]
    assert session_token not in caplog.text
