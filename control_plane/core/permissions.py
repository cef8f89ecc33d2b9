"""What a tenant route needs, declared on the route, checked by one guard.

Every ``/api/v1`` route declares its permission: ``@get(..., opt=requires("targets:read"))``.
The tenant router's ``permission_guard`` checks it against what the caller holds
(``OrgContext.permissions``: ``None`` is a full-access key, else a set of permissions derived
from a key's scopes and its user's role). A route that declares nothing is refused (403), and
``tests/control_plane/core/test_permissions.py`` fails for it: no route escapes the check.

Permissions are ``<resource>:read`` and ``<resource>:write``; write implies read.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from control_plane.core.errors import ApiError

OPT_KEY = "permission"

# The resources of the tenant API. A new slice adds its resource here.
RESOURCES = (
    "targets",
    "incidents",
    "channels",
    "alert_rules",
    "maintenance",
    "webhooks",
    "status_pages",
    "members",
    "api_keys",
    "audit",
    "org",
)
PERMISSIONS = frozenset(f"{r}:{a}" for r in RESOURCES for a in ("read", "write"))


def requires(permission: str) -> dict[str, Any]:
    """The route option that declares ``permission`` (``opt=requires("targets:write")``)."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    return {OPT_KEY: permission}


def declared(handler: BaseRouteHandler) -> str | None:
    permission = handler.opt.get(OPT_KEY)
    return permission if isinstance(permission, str) else None


def allows(held: frozenset[str] | None, permission: str) -> bool:
    """Whether ``held`` grants ``permission`` (``None``: everything; write implies read)."""
    if held is None:
        return True
    if permission in held:
        return True
    resource, _, action = permission.partition(":")
    return action == "read" and f"{resource}:write" in held


def permission_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """After authentication (``org_guard``): the caller may do what the route declares."""
    from control_plane.core.auth import ORG_KEY

    if connection.scope.get("method") == "OPTIONS":
        return  # Litestar's own answer listing the route's methods: nothing to permit
    permission = declared(handler)
    if permission is None:
        raise ApiError(403, "FORBIDDEN", "this route declares no permission; refused")
    org = connection.scope["state"].get(ORG_KEY)
    held = getattr(org, "permissions", None)
    if not allows(held, permission):
        raise ApiError(
            403,
            "FORBIDDEN",
            f"this action needs the {permission} permission",
            details={"permission": permission},
        )
