"""Invitations and password resets by mail, through a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import dataclasses
import re
import socket
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller
from litestar import Litestar
from litestar.testing import AsyncTestClient

from control_plane.app import create_app
from control_plane.domain.users.service import add_member, create_user
from control_plane.settings import MailSettings, Settings
from tests.conftest import Persona, assert_error

PASSWORD = "correct horse battery staple"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted"

    def token(self, prefix: str) -> str:
        body = self.messages[-1].get_payload(decode=True).decode()
        found = re.search(rf"{prefix}[A-Za-z0-9_-]+", body)
        assert found, body
        return found.group(0)


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box = Inbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def settings(settings: Settings, inbox: tuple[Inbox, int]) -> Settings:
    return dataclasses.replace(
        settings, mail=MailSettings(host="127.0.0.1", port=inbox[1], security="none")
    )


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as c:
        yield c


async def test_invite_a_newcomer_who_accepts_once(
    owner: Persona, inbox: tuple[Inbox, int], anon: Persona
) -> None:
    box, _ = inbox
    resp = await owner.post(
        "/api/v1/invitations", json={"email": "New@Example.com", "role": "VIEWER"}
    )
    assert resp.status_code == 201, resp.text
    inv = resp.json()
    assert inv["email"] == "new@example.com" and inv["mail_sent"] is True
    assert box.messages[-1]["To"] == "new@example.com"
    token = box.token("vgi_")
    assert token not in resp.text
    listed = (await owner.get("/api/v1/invitations")).json()
    assert [i["id"] for i in listed["items"]] == [inv["id"]]
    # A newcomer must give a name and password.
    resp = await anon.post("/api/auth/invitations/accept", json={"token": token})
    assert_error(resp, 400, "ACCOUNT_DETAILS_REQUIRED")
    resp = await anon.post(
        "/api/auth/invitations/accept", json={"token": token, "name": "New", "password": PASSWORD}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["role"] == "VIEWER" and resp.json()["org_id"] == str(owner.org_id)
    again = await anon.post(
        "/api/auth/invitations/accept", json={"token": token, "name": "New", "password": PASSWORD}
    )
    assert_error(again, 404, "INVITATION_NOT_FOUND")
    members = (await owner.get("/api/v1/members")).json()["items"]
    assert [m["email"] for m in members] == ["new@example.com"]
    resp = await anon.post(
        "/api/auth/sign-in", json={"email": "new@example.com", "password": PASSWORD}
    )
    assert resp.status_code == 200
    assert (await owner.get("/api/v1/invitations")).json()["total"] == 0


async def test_revoked_invitation_and_cross_org(
    owner: Persona, outsider: Persona, inbox: tuple[Inbox, int], anon: Persona
) -> None:
    box, _ = inbox
    inv = (await owner.post("/api/v1/invitations", json={"email": "x@example.com"})).json()
    token = box.token("vgi_")
    assert_error(
        await outsider.delete(f"/api/v1/invitations/{inv['id']}"), 404, "INVITATION_NOT_FOUND"
    )
    assert (await owner.delete(f"/api/v1/invitations/{inv['id']}")).status_code == 204
    resp = await anon.post(
        "/api/auth/invitations/accept", json={"token": token, "name": "X", "password": PASSWORD}
    )
    assert_error(resp, 404, "INVITATION_NOT_FOUND")
    for body in ({"email": "nope"}, {"email": "a@b.c", "role": "KING"}, {"email": ""}):
        assert (await owner.post("/api/v1/invitations", json=body)).status_code == 400


async def test_an_address_with_a_control_character_is_refused_with_the_envelope(
    owner: Persona, inbox: tuple[Inbox, int]
) -> None:
    """Control characters and whitespace by either regex dialect (Python's ``\\s`` has \\x1d
    and \\x85, ECMA's has \\ufeff), and a final newline (Python's ``$`` allows one): a 400 in
    the one envelope, nothing stored, no mail; a plain address next to them is accepted."""
    box, _ = inbox
    for email in (
        "a\x1d@example.com",
        "a@exam\x1fple.com",
        "a\x85@example.com",
        "\ufeffa@example.com",
        "a\x7f@example.com",
        "a@example.com\n",
        "a\u2028@example.com",
    ):
        resp = await owner.post("/api/v1/invitations", json={"email": email})
        assert_error(resp, 400, "VALIDATION_ERROR", "/email")
    assert (await owner.get("/api/v1/invitations")).json()["total"] == 0
    assert box.messages == []
    resp = await owner.post("/api/v1/invitations", json={"email": "ünï@example.com"})
    assert resp.status_code == 201, resp.text


async def test_invitations_limit_and_member_quota(
    owner: Persona, operator: Persona, db_url: str
) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO invitations (id, org_id, email, role, token_hash, expires_at) "
            "SELECT gen_random_uuid(), %s, 'p' || i || '@example.com', 'MEMBER', "
            "sha256(i::text::bytea), now() + interval '1 day' FROM generate_series(1, 50) i",
            (owner.org_id,),
        )
    resp = await owner.post("/api/v1/invitations", json={"email": "one@example.com"})
    assert_error(resp, 409, "INVITATIONS_LIMIT")
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("DELETE FROM invitations")
        uid = await create_user(conn, "boss@example.com", "Boss", PASSWORD)
        await add_member(conn, owner.org_id, uid, "OWNER")
    await operator.put(
        f"/operator/orgs/{owner.org_id}/plan",
        json={"plan_id": "unlimited", "overrides": {"max_members": 1}},
    )
    resp = await owner.post("/api/v1/invitations", json={"email": "two@example.com"})
    err = assert_error(resp, 422, "QUOTA_EXCEEDED")
    assert err["details"]["quota"] == "max_members" and err["details"]["limit"] == 1


async def test_password_reset_by_mail(
    owner: Persona, inbox: tuple[Inbox, int], anon: Persona, db_url: str
) -> None:
    box, _ = inbox
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        uid = await create_user(conn, "eve@example.com", "Eve", PASSWORD)
        await add_member(conn, owner.org_id, uid, "MEMBER")
    signed = await anon.post(
        "/api/auth/sign-in", json={"email": "eve@example.com", "password": PASSWORD}
    )
    old_cookie = {"Cookie": f"vigil_session={signed.cookies['vigil_session']}"}
    anon.client.cookies.clear()
    # Unknown and known emails get the same answer; only the known one gets mail.
    resp = await anon.post("/api/auth/password-reset", json={"email": "nobody@example.com"})
    assert resp.status_code == 202 and not box.messages
    resp = await anon.post("/api/auth/password-reset", json={"email": "eve@example.com"})
    assert resp.status_code == 202 and len(box.messages) == 1
    token = box.token("vgr_")
    new = "a brand new long password"
    resp = await anon.post(
        "/api/auth/password-reset/confirm", json={"token": token, "password": "short"}
    )
    assert resp.status_code == 400 and resp.json()["error"]["field"] == "/password"
    resp = await anon.post(
        "/api/auth/password-reset/confirm", json={"token": token, "password": new}
    )
    assert resp.status_code == 204
    resp = await anon.post(
        "/api/auth/password-reset/confirm", json={"token": token, "password": new}
    )
    assert_error(resp, 404, "RESET_NOT_FOUND")
    # The old session is over, the old password too; the new one works.
    assert_error(await anon.get("/api/v1/targets", headers=old_cookie), 401, "UNAUTHORIZED")
    resp = await anon.post(
        "/api/auth/sign-in", json={"email": "eve@example.com", "password": PASSWORD}
    )
    assert_error(resp, 401, "INVALID_CREDENTIALS")
    resp = await anon.post("/api/auth/sign-in", json={"email": "eve@example.com", "password": new})
    assert resp.status_code == 200


def tight(settings: Settings, per_address: int, per_recipient: int) -> Settings:
    return dataclasses.replace(
        settings,
        accounts=dataclasses.replace(
            settings.accounts,
            mail_requests_per_address_per_hour=per_address,
            mails_per_recipient_per_hour=per_recipient,
        ),
    )


async def test_password_reset_cannot_be_used_to_spam(
    settings: Settings, inbox: tuple[Inbox, int], db_url: str
) -> None:
    box, _ = inbox
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await create_user(conn, "eve@example.com", "Eve", PASSWORD)
    async with AsyncTestClient(app=create_app(tight(settings, 3, 2))) as client:
        reset = "/api/auth/password-reset"
        for _ in range(2):
            assert (await client.post(reset, json={"email": "Eve@example.com"})).status_code == 202
        # The recipient's budget is spent, whatever the spelling of the address ...
        resp = await client.post(reset, json={"email": " eve@EXAMPLE.com"})
        err = assert_error(resp, 429, "RATE_LIMITED")
        assert err["details"]["scope"] == "per_recipient_mail"
        assert 1 <= int(resp.headers["retry-after"]) <= 3600
        assert len(box.messages) == 2
        # ... another recipient is not (an address without an account is counted the same:
        # a 429 tells nothing about who has an account), until the address' budget is spent.
        assert (await client.post(reset, json={"email": "nobody@example.com"})).status_code == 202
        resp = await client.post(reset, json={"email": "someone@example.com"})
        err = assert_error(resp, 429, "RATE_LIMITED")
        assert err["details"]["scope"] == "per_ip_mail_requests"
        assert len(box.messages) == 2


async def test_invitations_cannot_be_used_to_spam(
    settings: Settings, inbox: tuple[Inbox, int], owner: Persona, outsider: Persona
) -> None:
    box, _ = inbox
    async with AsyncTestClient(app=create_app(tight(settings, 100, 2))) as client:

        async def invite(who: Persona, email: str) -> Any:
            return await client.post(
                "/api/v1/invitations", json={"email": email}, headers=who.headers
            )

        assert (await invite(owner, "x@example.com")).status_code == 201
        assert (await invite(owner, "x@example.com")).status_code == 201
        # The recipient's budget holds whoever asks: another org cannot go on mailing them.
        resp = await invite(outsider, "X@example.com")
        err = assert_error(resp, 429, "RATE_LIMITED")
        assert err["details"]["scope"] == "per_recipient_mail"
        assert "retry-after" in resp.headers
        assert (await invite(outsider, "y@example.com")).status_code == 201
        assert len(box.messages) == 3
    # Off (0): no mail budget at all.
    async with AsyncTestClient(app=create_app(tight(settings, 0, 0))) as client:
        for _ in range(3):
            resp = await client.post(
                "/api/v1/invitations", json={"email": "z@example.com"}, headers=owner.headers
            )
            assert resp.status_code == 201
