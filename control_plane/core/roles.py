"""Member roles and what each may do, as ``core/permissions.py`` permissions.

OWNER: everything. ADMIN: everything but the org itself (``org:write``). MEMBER: reads
(not the audit log) and the day-to-day writes (targets, incidents, channels, alert rules,
maintenance, webhooks, their own API keys); status pages and members are owner/admin only, as
the reference says. VIEWER: reads only (not the audit log, nor the org's keys).
"""

from __future__ import annotations

from control_plane.core.permissions import PERMISSIONS, RESOURCES

ROLES = ("OWNER", "ADMIN", "MEMBER", "VIEWER")
_READS = frozenset(f"{r}:read" for r in RESOURCES if r != "audit")
_MEMBER_WRITES = frozenset(
    f"{r}:write"
    for r in (
        "targets",
        "incidents",
        "channels",
        "alert_rules",
        "maintenance",
        "webhooks",
        "api_keys",
    )
)
ROLE_PERMISSIONS: dict[str, frozenset[str] | None] = {
    "OWNER": None,
    "ADMIN": PERMISSIONS - {"org:write"},
    "MEMBER": _READS | _MEMBER_WRITES,
    "VIEWER": _READS - {"api_keys:read"},
}


def permissions_of_role(role: str) -> frozenset[str] | None:
    return ROLE_PERMISSIONS[role]
