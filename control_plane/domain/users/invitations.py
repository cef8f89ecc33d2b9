"""Invitations by email (single use, expiring, capped) and password resets by mail."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from typing import Any

import structlog

from control_plane.core import quotas
from control_plane.core.errors import ApiError, not_found
from control_plane.core.ids import new_id
from control_plane.core.mail import MailError, send_mail
from control_plane.core.service import Service, TenantService
from control_plane.security import tokens

from .passwords import hash_password
from .schemas import (
    Accepted,
    Invitation,
    InvitationAccept,
    InvitationCreate,
    ResetConfirm,
    ResetRequest,
)
from .service import MIN_PASSWORD, Q, add_member, create_user

log = structlog.get_logger(__name__)
# Outstanding invitations an org may have at once (INVITATIONS_LIMIT).
INVITATIONS_LIMIT = 50
INVITATION_DAYS = 7
COUNT_MEMBERS = "SELECT count(*) AS n FROM memberships WHERE org_id = %(org_id)s"


def invitation_not_found() -> ApiError:
    return not_found("INVITATION_NOT_FOUND", "invitation")


def _invitation(row: dict[str, Any], mail_sent: bool | None = None) -> Invitation:
    return Invitation(
        id=row["id"],
        email=row["email"],
        role=row["role"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        mail_sent=mail_sent,
    )


def _bad_password(password: str) -> ApiError | None:
    if len(password) < MIN_PASSWORD:
        return ApiError(
            400,
            "WEAK_PASSWORD",
            f"a password needs at least {MIN_PASSWORD} characters",
            "/password",
        )
    return None


class InvitationService(TenantService):
    async def create(self, body: InvitationCreate) -> Invitation:
        email = body.email.strip().lower()
        if "@" not in email:
            raise ApiError(400, "INVALID_EMAIL", "an email address needs an @", "/email")
        if body.role == "OWNER" and self.org.permissions is not None:
            raise ApiError(403, "FORBIDDEN", "only an owner may invite an owner", "/role")
        token = "vgi_" + secrets.token_urlsafe(32)
        conn = await self.conn()
        async with conn.transaction():
            await conn.execute(quotas.LOCK, {"key": f"{self.org.org_id}:invitations"})
            pending = await (
                await conn.execute(Q.pending_invitations, {"org_id": self.org.org_id})
            ).fetchone()
            if pending is not None and pending["n"] >= INVITATIONS_LIMIT:
                raise ApiError(
                    409,
                    "INVITATIONS_LIMIT",
                    f"the org has {INVITATIONS_LIMIT} pending invitations; revoke some first",
                    details={"limit": INVITATIONS_LIMIT},
                )
            await quotas.enforce(conn, self.org.org_id, "max_members", COUNT_MEMBERS)
            row = await (
                await conn.execute(
                    Q.insert_invitation,
                    {
                        "id": new_id(),
                        "org_id": self.org.org_id,
                        "email": email,
                        "role": body.role,
                        "hash": tokens.token_hash(self.settings.security.token_key, token),
                        "days": INVITATION_DAYS,
                    },
                )
            ).fetchone()
            assert row is not None
            await self.audit(
                conn, "invitation.create", "invitation", row["id"], after=_invitation(row)
            )
        sent = await _mail(
            self,
            email,
            "You are invited to Vigil",
            f"You are invited to join an org on Vigil as {body.role}.\n\n"
            f"Accept within {INVITATION_DAYS} days: POST {self.public_url}"
            f'/api/auth/invitations/accept with {{"token": "{token}"}}\n',
        )
        return _invitation(row, sent)

    async def list_page(self, *, limit: int, offset: int) -> tuple[list[Invitation], int]:
        rows = await (
            await (await self.conn()).execute(
                Q.list_invitations, {"org_id": self.org.org_id, "limit": limit, "offset": offset}
            )
        ).fetchall()
        return [_invitation(r) for r in rows], int(rows[0]["total"]) if rows else 0

    async def revoke(self, invitation_id: uuid.UUID) -> None:
        conn = await self.conn()
        async with conn.transaction():
            row = await (
                await conn.execute(
                    Q.revoke_invitation, {"id": invitation_id, "org_id": self.org.org_id}
                )
            ).fetchone()
            if row is None:
                raise invitation_not_found()
            await self.audit(
                conn, "invitation.revoke", "invitation", invitation_id, before=_invitation(row)
            )


async def _mail(service: Service, to: str, subject: str, text: str) -> bool:
    try:
        await send_mail(service.settings.mail, to=to, subject=subject, text=text)
    except MailError as exc:
        log.warning("mail_not_sent", subject=subject, error=str(exc))
        return False
    return True


class AccountService(Service):
    """The unauthenticated account flows: accepting an invitation, resetting a password."""

    def _hash(self, token: str) -> bytes:
        return tokens.token_hash(self.settings.security.token_key, token)

    async def accept(self, body: InvitationAccept) -> Accepted:
        conn = await self.conn()
        async with conn.transaction():
            inv = await (
                await conn.execute(Q.take_invitation, {"hash": self._hash(body.token)})
            ).fetchone()
            if inv is None:
                raise ApiError(
                    404, "INVITATION_NOT_FOUND", "no such invitation, or used, revoked or expired"
                )
            user = await (await conn.execute(Q.user_by_email, {"email": inv["email"]})).fetchone()
            if user is not None:
                user_id = user["id"]
            else:
                if body.name is None or body.password is None:
                    raise ApiError(
                        400,
                        "ACCOUNT_DETAILS_REQUIRED",
                        "no account has this email yet: send name and password",
                        "/password",
                    )
                weak = _bad_password(body.password)
                if weak:
                    raise weak
                user_id = await create_user(conn, inv["email"], body.name, body.password)
            await quotas.enforce(conn, inv["org_id"], "max_members", COUNT_MEMBERS)
            await add_member(conn, inv["org_id"], user_id, inv["role"])
        return Accepted(org_id=inv["org_id"], user_id=user_id, role=inv["role"])

    async def request_reset(self, body: ResetRequest) -> None:
        """Always the same answer (no telling which emails have accounts); a mail if one does."""
        conn = await self.conn()
        user = await (
            await conn.execute(Q.user_by_email, {"email": body.email.strip().lower()})
        ).fetchone()
        if user is None:
            return
        token = "vgr_" + secrets.token_urlsafe(32)
        await conn.execute(
            Q.insert_reset, {"id": new_id(), "user_id": user["id"], "hash": self._hash(token)}
        )
        await _mail(
            self,
            user["email"],
            "Reset your Vigil password",
            "Someone asked to reset your Vigil password. If it was you, within an hour: POST "
            f"{self.public_url}/api/auth/password-reset/confirm with "
            f'{{"token": "{token}", "password": "<new password>"}}\n',
        )

    async def confirm_reset(self, body: ResetConfirm) -> None:
        weak = _bad_password(body.password)
        if weak:
            raise weak
        hashed = await asyncio.to_thread(hash_password, body.password)
        conn = await self.conn()
        async with conn.transaction():
            row = await (
                await conn.execute(Q.take_reset, {"hash": self._hash(body.token)})
            ).fetchone()
            if row is None:
                raise ApiError(404, "RESET_NOT_FOUND", "no such reset, or used or expired")
            await conn.execute(Q.set_password, {"id": row["user_id"], "password_hash": hashed})
            # Every session of the user ends: whoever knew the old password is out.
            await conn.execute(Q.revoke_sessions, {"user_id": row["user_id"]})
