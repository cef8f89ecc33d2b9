"""API key scopes: the names a key is given, mapped onto ``core/permissions.py`` permissions.

A scope is a permission (``targets:read``, ``channels:write``, …; write implies read), or one of
the named bundles: ``read_only`` (every ``:read`` but ``audit:read``) and ``full_access``
(everything, stored as NULL permissions like the org tokens made before scopes existed). A key
never exceeds its creator: every permission it would hold must be held by the key that creates
it.
"""

from __future__ import annotations

from collections.abc import Iterable

from control_plane.core.errors import ApiError
from control_plane.core.permissions import PERMISSIONS, RESOURCES, allows

FULL_ACCESS = "full_access"
READ_ONLY = "read_only"
# ``read_only`` reads everything but the audit log (owners' and admins' business).
READ_ALL = frozenset(f"{r}:read" for r in RESOURCES if r != "audit")
SCOPES = frozenset(PERMISSIONS | {FULL_ACCESS, READ_ONLY})


def permissions_of(scopes: Iterable[str]) -> frozenset[str] | None:
    """The permissions ``scopes`` grant; None is everything. Unknown scopes are a 400."""
    held: set[str] = set()
    listed = list(scopes)
    if not listed:
        raise ApiError(400, "INVALID_SCOPES", "a key needs at least one scope", "/scopes")
    for i, scope in enumerate(listed):
        if scope not in SCOPES:
            raise ApiError(
                400,
                "INVALID_SCOPES",
                f"unknown scope {scope!r}; known: {', '.join(sorted(SCOPES))}",
                f"/scopes/{i}",
            )
        if scope == FULL_ACCESS:
            return None
        held |= READ_ALL if scope == READ_ONLY else {scope}
    return frozenset(held)


def within(creator: frozenset[str] | None, wanted: frozenset[str] | None) -> bool:
    """Whether a key holding ``creator`` may hand out ``wanted`` (never more than it holds)."""
    if creator is None:
        return True
    if wanted is None:
        return False
    return all(allows(creator, p) for p in wanted)


def scopes_of(stored: list[str] | None) -> list[str]:
    """A key's scopes as the API shows them (a pre-scope token is ``full_access``)."""
    return [FULL_ACCESS] if stored is None else list(stored)
