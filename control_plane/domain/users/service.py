"""Users, their memberships and browser sessions; members of an org (owner/admin manage)."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from typing import Any

from psycopg import AsyncConnection

from control_plane.core.errors import ApiError, not_found
from control_plane.core.ids import new_id
from control_plane.core.service import Service, TenantService
from control_plane.db.sql import Queries
from control_plane.security import tokens

from .passwords import hash_password, verify_password
from .schemas import ActiveOrg, Me, Member, MemberUpdate, OrgMembership, SignIn

Q = Queries.beside(__file__)
SESSION_PREFIX = "vgs_"
MIN_PASSWORD = 10


def member_not_found() -> ApiError:
    return not_found("MEMBER_NOT_FOUND", "member")


async def create_user(
    conn: AsyncConnection[Any], email: str, name: str, password: str
) -> uuid.UUID:
    """A new user (CLI, tests); ``LookupError`` when the email is taken."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    hashed = await asyncio.to_thread(hash_password, password)
    row = await (
        await conn.execute(
            Q.insert_user,
            {"id": new_id(), "email": email.strip().lower(), "name": name, "password_hash": hashed},
        )
    ).fetchone()
    if row is None:
        raise LookupError(f"a user with email {email!r} exists")
    user_id: uuid.UUID = row["id"] if isinstance(row, dict) else row[0]
    return user_id


async def add_member(
    conn: AsyncConnection[Any], org_id: uuid.UUID, user_id: uuid.UUID, role: str
) -> None:
    await conn.execute(Q.add_member, {"org_id": org_id, "user_id": user_id, "role": role})


class AuthService(Service):
    """Sign-in, sign-out, the signed-in user and their active org (no tenant context)."""

    async def sign_in(self, body: SignIn) -> tuple[Me, str]:
        """(who, the session cookie's value) or 401 INVALID_CREDENTIALS."""
        conn = await self.conn()
        user = await (
            await conn.execute(Q.user_by_email, {"email": body.email.strip().lower()})
        ).fetchone()
        ok = await asyncio.to_thread(
            verify_password, user["password_hash"] if user else None, body.password
        )
        if user is None or not ok:
            raise ApiError(401, "INVALID_CREDENTIALS", "unknown email or wrong password")
        orgs = await self._orgs(conn, user["id"])
        active = body.org_id or (orgs[0].org_id if orgs else None)
        if active is not None and active not in {o.org_id for o in orgs}:
            raise ApiError(403, "NOT_A_MEMBER", "you are not a member of that org", "/org_id")
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        await conn.execute(
            Q.insert_session,
            {
                "id": new_id(),
                "user_id": user["id"],
                "hash": tokens.token_hash(self.settings.security.token_key, token),
                "csrf": csrf,
                "org_id": active,
                "days": self.settings.accounts.session_days,
            },
        )
        me = Me(
            user_id=user["id"],
            email=user["email"],
            name=user["name"],
            orgs=orgs,
            active_org_id=active,
            csrf_token=csrf,
        )
        return me, token

    async def _orgs(self, conn: AsyncConnection[Any], user_id: uuid.UUID) -> list[OrgMembership]:
        rows = await (await conn.execute(Q.orgs_of_user, {"user_id": user_id})).fetchall()
        return [OrgMembership(org_id=r["org_id"], name=r["name"], role=r["role"]) for r in rows]

    async def session(self, token: str) -> dict[str, Any]:
        conn = await self.conn()
        row: dict[str, Any] | None = await (
            await conn.execute(
                Q.session_by_hash,
                {"hash": tokens.token_hash(self.settings.security.token_key, token)},
            )
        ).fetchone()
        if row is None:
            raise ApiError(401, "UNAUTHORIZED", "not signed in")
        return row

    async def me(self, token: str) -> Me:
        session = await self.session(token)
        conn = await self.conn()
        user = await (await conn.execute(Q.user_by_id, {"id": session["user_id"]})).fetchone()
        assert user is not None
        return Me(
            user_id=user["id"],
            email=user["email"],
            name=user["name"],
            orgs=await self._orgs(conn, user["id"]),
            active_org_id=session["active_org_id"],
            csrf_token=session["csrf_token"],
        )

    async def sign_out(self, token: str) -> None:
        session = await self.session(token)
        await (await self.conn()).execute(Q.revoke_session, {"id": session["id"]})

    async def select_org(self, token: str, body: ActiveOrg) -> Me:
        session = await self.session(token)
        conn = await self.conn()
        orgs = await self._orgs(conn, session["user_id"])
        if body.org_id not in {o.org_id for o in orgs}:
            raise ApiError(403, "NOT_A_MEMBER", "you are not a member of that org", "/org_id")
        await conn.execute(Q.set_active_org, {"id": session["id"], "org_id": body.org_id})
        return await self.me(token)


def _member(row: dict[str, Any]) -> Member:
    return Member(
        user_id=row["user_id"],
        email=row["email"],
        name=row["name"],
        role=row["role"],
        created_at=row["created_at"],
    )


class MemberService(TenantService):
    async def list_page(self, *, limit: int, offset: int) -> tuple[list[Member], int]:
        conn = await self.conn()
        rows = await (
            await conn.execute(
                Q.list_members, {"org_id": self.org.org_id, "limit": limit, "offset": offset}
            )
        ).fetchall()
        total = int(rows[0]["total"]) if rows else 0
        return [_member(r) for r in rows], total

    async def _locked(self, conn: AsyncConnection[Any], user_id: uuid.UUID) -> dict[str, Any]:
        await conn.execute(Q.lock_org, {"org_id": self.org.org_id})
        row: dict[str, Any] | None = await (
            await conn.execute(Q.member, {"org_id": self.org.org_id, "user_id": user_id})
        ).fetchone()
        if row is None:
            raise member_not_found()
        return row

    async def _keep_an_owner(self, conn: AsyncConnection[Any], row: dict[str, Any]) -> None:
        if row["role"] != "OWNER":
            return
        owners = await (await conn.execute(Q.owners, {"org_id": self.org.org_id})).fetchone()
        if owners is not None and owners["n"] <= 1:
            raise ApiError(409, "LAST_OWNER", "an org keeps at least one owner")

    def _only_owners_touch_owners(self, row: dict[str, Any], role: str | None) -> None:
        # An admin may not make, demote or remove an owner (a key of the org's is full access).
        is_owner = self.org.permissions is None
        if not is_owner and (row["role"] == "OWNER" or role == "OWNER"):
            raise ApiError(403, "FORBIDDEN", "only an owner may change an owner's membership")

    async def update(self, user_id: uuid.UUID, body: MemberUpdate) -> Member:
        conn = await self.conn()
        async with conn.transaction():
            row = await self._locked(conn, user_id)
            self._only_owners_touch_owners(row, body.role)
            if body.role != "OWNER":
                await self._keep_an_owner(conn, row)
            await conn.execute(
                Q.set_role, {"org_id": self.org.org_id, "user_id": user_id, "role": body.role}
            )
            after = await self._locked(conn, user_id)
            await self.audit(
                conn, "member.update", "member", user_id, before=_member(row), after=_member(after)
            )
        return _member(after)

    async def remove(self, user_id: uuid.UUID) -> None:
        conn = await self.conn()
        async with conn.transaction():
            row = await self._locked(conn, user_id)
            self._only_owners_touch_owners(row, None)
            await self._keep_an_owner(conn, row)
            await conn.execute(Q.remove_member, {"org_id": self.org.org_id, "user_id": user_id})
            await self.audit(conn, "member.remove", "member", user_id, before=_member(row))
