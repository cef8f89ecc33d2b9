"""Bodies of /api/auth (sign-in, sign-out, me, active org) and /api/v1/members."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

Role = Literal["OWNER", "ADMIN", "MEMBER", "VIEWER"]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
# A password being set: at least 10 characters (WEAK_PASSWORD).
NewPassword = Annotated[str, msgspec.Meta(min_length=10, max_length=1024)]
# One character of an invited address: not "@", a space, a control character (C0, DEL, C1) or
# any character Python or ECMA counts as whitespace. Spelled out rather than ``\s``, which means
# different sets in Python's ``re`` (the app: \x1c-\x1f, \x85) and in ECMA regex (the OpenAPI
# document's readers, schemathesis among them: \ufeff), so both read the pattern alike.
_ADDRESS_CHAR = (
    r"[^@ \x00-\x1f\x7f-\x9f\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
)
# ``$(?!\n)``: Python's ``$`` also matches before a final newline, ECMA's only at the end.
InviteEmail = Annotated[
    str,
    msgspec.Meta(
        min_length=3,
        max_length=254,
        pattern=rf"^{_ADDRESS_CHAR}+@{_ADDRESS_CHAR}+$(?!\n)",
    ),
]


class SignIn(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: Password
    # The org to work in; default: the first the user is a member of.
    org_id: uuid.UUID | None = None


class OrgMembership(msgspec.Struct):
    org_id: uuid.UUID
    name: str
    role: Role


class Me(msgspec.Struct):
    """The signed-in user, their orgs and the active one. ``csrf_token`` must be sent back as
    ``X-CSRF-Token`` on every request that changes something."""

    user_id: uuid.UUID
    email: str
    name: str
    orgs: list[OrgMembership]
    active_org_id: uuid.UUID | None
    csrf_token: str


class ActiveOrg(msgspec.Struct, forbid_unknown_fields=True):
    org_id: uuid.UUID


class Member(msgspec.Struct):
    user_id: uuid.UUID
    email: str
    name: str
    role: Role
    created_at: datetime


class MemberUpdate(msgspec.Struct, forbid_unknown_fields=True):
    role: Role


class InvitationCreate(msgspec.Struct, forbid_unknown_fields=True):
    email: InviteEmail
    role: Role = "MEMBER"


class Invitation(msgspec.Struct):
    id: uuid.UUID
    email: str
    role: Role
    created_at: datetime
    expires_at: datetime
    # Whether the invitation mail went out (the invitation stands either way).
    mail_sent: bool | None = None


class InvitationAccept(msgspec.Struct, forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    # For someone without an account yet: their name and password.
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    password: NewPassword | None = None


class Accepted(msgspec.Struct):
    org_id: uuid.UUID
    user_id: uuid.UUID
    role: Role


class ResetRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: Email


class ResetConfirm(msgspec.Struct, forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    password: NewPassword
