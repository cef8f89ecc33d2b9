"""/api/auth (browser sign-in with a session cookie) and /api/v1/members."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_204_NO_CONTENT

from control_plane.core.auth import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SESSION_COOKIE,
    client_ip,
    count_failure,
    resources,
)
from control_plane.core.errors import ApiError
from control_plane.core.observability.openapi import errors
from control_plane.core.pagination import Offset, Page, PageSize
from control_plane.core.permissions import requires
from control_plane.core.requests import path_uuid, strict_body
from control_plane.core.service import provide

from .invitations import AccountService, InvitationService, invitation_not_found
from .mail_limits import spend_mail
from .schemas import (
    Accepted,
    ActiveOrg,
    Invitation,
    InvitationAccept,
    InvitationCreate,
    Me,
    Member,
    MemberUpdate,
    ResetConfirm,
    ResetRequest,
    SignIn,
)
from .service import AuthService, MemberService, member_not_found

LIST = PageSize(default=50, cap=500)
MAIL_429 = (
    "[RATE_LIMITED] a per-minute API budget, or the mail this address may cause "
    "(`details.scope`: per_ip_mail_requests, per_recipient_mail) is spent; `Retry-After`"
)


def _cookies(request: Request[Any, Any, Any], token: str, csrf: str) -> list[Cookie]:
    settings = resources(request).settings.accounts
    age = settings.session_days * 86400
    return [
        Cookie(
            key=SESSION_COOKIE,
            value=token,
            httponly=True,
            secure=settings.cookie_secure,
            samesite="lax",
            path="/",
            max_age=age,
        ),
        # Readable by the page's script, which sends it back as X-CSRF-Token.
        Cookie(
            key=CSRF_COOKIE,
            value=csrf,
            httponly=False,
            secure=settings.cookie_secure,
            samesite="strict",
            path="/",
            max_age=age,
        ),
    ]


def _session_token(request: Request[Any, Any, Any]) -> str:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise ApiError(401, "UNAUTHORIZED", "not signed in")
    return token


def _csrf(request: Request[Any, Any, Any], me: Me) -> None:
    import hmac

    if not hmac.compare_digest(
        request.headers.get(CSRF_HEADER, "").encode(), me.csrf_token.encode()
    ):
        raise ApiError(403, "CSRF_FAILED", "this request must carry the X-CSRF-Token header")


class AuthController(Controller):
    """No bearer: the session cookie is the credential (mounted outside /api/v1)."""

    path = "/"
    tags = ["auth"]
    dependencies = {"auth": provide(AuthService)}

    @post(
        "/sign-in",
        operation_id="signIn",
        status_code=200,
        responses=errors(s401="[INVALID_CREDENTIALS] unknown email or wrong password"),
    )
    async def sign_in(
        self,
        request: Request[Any, Any, Any],
        auth: NamedDependency[AuthService],
        data: JSONBody[SignIn],
    ) -> Response[Me]:
        """Sign in: sets the session cookie (HttpOnly, SameSite=Lax) and the CSRF cookie."""
        body = await strict_body(request, SignIn)
        try:
            me, token = await auth.sign_in(body)
        except ApiError as exc:
            if exc.code == "INVALID_CREDENTIALS":
                await count_failure(resources(request), client_ip(request))
            raise
        return Response(me, cookies=_cookies(request, token, me.csrf_token))

    @get("/me", operation_id="whoAmI", responses=errors(s401="[UNAUTHORIZED] not signed in"))
    async def me(self, request: Request[Any, Any, Any], auth: NamedDependency[AuthService]) -> Me:
        """The signed-in user, their orgs and roles, the active org and the CSRF token."""
        return await auth.me(_session_token(request))

    @post(
        "/active-org",
        operation_id="selectActiveOrg",
        status_code=200,
        responses=errors(s403="[NOT_A_MEMBER, CSRF_FAILED]"),
    )
    async def select_org(
        self,
        request: Request[Any, Any, Any],
        auth: NamedDependency[AuthService],
        data: JSONBody[ActiveOrg],
    ) -> Me:
        """Work in another of your orgs."""
        token = _session_token(request)
        _csrf(request, await auth.me(token))
        return await auth.select_org(token, await strict_body(request, ActiveOrg))

    @post(
        "/sign-out",
        operation_id="signOut",
        status_code=HTTP_204_NO_CONTENT,
        responses=errors(s403="[CSRF_FAILED]"),
    )
    async def sign_out(
        self, request: Request[Any, Any, Any], auth: NamedDependency[AuthService]
    ) -> Response[None]:
        """End this session (its cookie stops working everywhere at once)."""
        token = _session_token(request)
        _csrf(request, await auth.me(token))
        await auth.sign_out(token)
        gone = [
            Cookie(key=k, value="", max_age=0, path="/", expires=0)
            for k in (SESSION_COOKIE, CSRF_COOKIE)
        ]
        return Response(None, status_code=HTTP_204_NO_CONTENT, cookies=gone)


class AccountController(Controller):
    """Invitations accepted and passwords reset: the mailed token is the credential."""

    path = "/"
    tags = ["auth"]
    dependencies = {"accounts": provide(AccountService)}

    @post(
        "/invitations/accept",
        operation_id="acceptInvitation",
        status_code=200,
        responses=errors(
            s404="[INVITATION_NOT_FOUND] unknown, used, revoked or expired",
            s422="[QUOTA_EXCEEDED] the org's plan allows no more members",
        ),
    )
    async def accept(
        self,
        request: Request[Any, Any, Any],
        accounts: NamedDependency[AccountService],
        data: JSONBody[InvitationAccept],
    ) -> Accepted:
        """Join the org (a new account needs ``name`` and ``password``); single use."""
        return await accounts.accept(await strict_body(request, InvitationAccept))

    @post(
        "/password-reset",
        operation_id="requestPasswordReset",
        status_code=202,
        responses=errors(s429=MAIL_429),
    )
    async def request_reset(
        self,
        request: Request[Any, Any, Any],
        accounts: NamedDependency[AccountService],
        data: JSONBody[ResetRequest],
    ) -> Response[None]:
        """Mail a reset link to the address if it has an account (the answer never says).
        Rate-limited per client address and per recipient (``VIGIL_MAIL_*``)."""
        body = await strict_body(request, ResetRequest)
        await spend_mail(request, body.email)
        await accounts.request_reset(body)
        return Response(None, status_code=202)

    @post(
        "/password-reset/confirm",
        operation_id="confirmPasswordReset",
        status_code=HTTP_204_NO_CONTENT,
        responses=errors(s404="[RESET_NOT_FOUND] unknown, used or expired"),
    )
    async def confirm_reset(
        self,
        request: Request[Any, Any, Any],
        accounts: NamedDependency[AccountService],
        data: JSONBody[ResetConfirm],
    ) -> None:
        """Set a new password with the mailed token; every session of the user ends."""
        await accounts.confirm_reset(await strict_body(request, ResetConfirm))


class InvitationController(Controller):
    path = "/invitations"
    tags = ["members"]
    dependencies = {"invitations": provide(InvitationService)}

    @post(
        "/",
        operation_id="createInvitation",
        opt=requires("members:write"),
        status_code=201,
        responses=errors(
            s409="[INVITATIONS_LIMIT] the org is at its pending-invitation cap",
            s422="[QUOTA_EXCEEDED] the org's plan allows no more members",
            s429=MAIL_429,
        ),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        invitations: NamedDependency[InvitationService],
        data: JSONBody[InvitationCreate],
    ) -> Invitation:
        """Invite someone by email (a single-use link valid 7 days, sent by mail). Mail is
        rate-limited per client address and per recipient (``VIGIL_MAIL_*``)."""
        body = await strict_body(request, InvitationCreate)
        await spend_mail(request, body.email)
        return await invitations.create(body)

    @get("/", operation_id="listInvitations", opt=requires("members:read"))
    async def list_invitations(
        self,
        invitations: NamedDependency[InvitationService],
        limit: Annotated[int | None, LIST.limit] = None,
        offset: Offset = None,
    ) -> Page[Invitation]:
        """Pending invitations, newest first."""
        paging = LIST.paging(limit, offset)
        items, total = await invitations.list_page(limit=paging.limit, offset=paging.offset)
        return paging.page(items, total)

    @delete(
        "/{invitation_id:str}",
        operation_id="revokeInvitation",
        opt=requires("members:write"),
        status_code=HTTP_204_NO_CONTENT,
    )
    async def revoke(
        self, invitations: NamedDependency[InvitationService], invitation_id: FromPath[str]
    ) -> None:
        """Withdraw a pending invitation."""
        await invitations.revoke(path_uuid(invitation_id, invitation_not_found()))


class MemberController(Controller):
    path = "/members"
    tags = ["members"]
    dependencies = {"members": provide(MemberService)}

    @get("/", operation_id="listMembers", opt=requires("members:read"))
    async def list_members(
        self,
        members: NamedDependency[MemberService],
        limit: Annotated[int | None, LIST.limit] = None,
        offset: Offset = None,
    ) -> Page[Member]:
        """The org's members and their roles."""
        paging = LIST.paging(limit, offset)
        items, total = await members.list_page(limit=paging.limit, offset=paging.offset)
        return paging.page(items, total)

    @patch(
        "/{user_id:str}",
        operation_id="updateMember",
        opt=requires("members:write"),
        responses=errors(s409="[LAST_OWNER] an org keeps at least one owner"),
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        members: NamedDependency[MemberService],
        user_id: FromPath[str],
        data: JSONBody[MemberUpdate],
    ) -> Member:
        """Change a member's role (owner/admin)."""
        uid = path_uuid(user_id, member_not_found())
        return await members.update(uid, await strict_body(request, MemberUpdate))

    @delete(
        "/{user_id:str}",
        operation_id="removeMember",
        opt=requires("members:write"),
        status_code=HTTP_204_NO_CONTENT,
        responses=errors(s409="[LAST_OWNER] an org keeps at least one owner"),
    )
    async def remove(self, members: NamedDependency[MemberService], user_id: FromPath[str]) -> None:
        """Remove a member from the org (owner/admin)."""
        await members.remove(path_uuid(user_id, member_not_found()))


__all__ = ["AccountController", "AuthController", "InvitationController", "MemberController"]
