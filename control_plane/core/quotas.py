"""Plan quotas, enforced atomically: two parallel creates at the limit, exactly one wins.

A service calls ``await quotas.enforce(conn, org_id, "max_targets", count_sql, adding=n)``
inside the transaction that creates the rows. It takes a transaction-scoped advisory lock on
(org, quota) — the second of two racing creates waits for the first to commit and then counts
its row — reads the org's limit (``org_limits``: its override, else its plan's; NULL is no
limit) and counts with ``count_sql``, the slice's own query (``%(org_id)s`` is bound; it
returns one row with ``n``). Over the limit is a 422 ``QUOTA_EXCEEDED`` with
``details: {quota, current, limit, plan}`` (or the slice's own code, e.g.
``CHANNEL_QUOTA_EXCEEDED``).
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import AsyncConnection, sql

from control_plane.core.errors import ApiError

QUOTAS = frozenset(
    {
        "max_targets",
        "max_notification_channels",
        "max_status_pages",
        "max_public_components",
        "max_members",
        "max_share_links_per_monitor",
        "max_shared_monitors",
    }
)
LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%(key)s, 4242))"


async def limit_of(
    conn: AsyncConnection[Any], org_id: uuid.UUID, quota: str
) -> tuple[str, int | None]:
    """(plan id, limit) of ``quota`` for the org; None is no limit."""
    if quota not in QUOTAS:
        raise ValueError(f"unknown quota {quota!r}")
    query = sql.SQL("SELECT plan_id, {} AS lim FROM org_limits WHERE org_id = %(org_id)s").format(
        sql.Identifier(quota)
    )
    cur = await conn.execute(query, {"org_id": org_id})
    row = await cur.fetchone()
    if row is None:
        return "unknown", None
    if isinstance(row, dict):
        return str(row["plan_id"]), row["lim"]
    return str(row[0]), row[1]


async def enforce(
    conn: AsyncConnection[Any],
    org_id: uuid.UUID,
    quota: str,
    count_sql: str,
    *,
    adding: int = 1,
    params: dict[str, Any] | None = None,
    code: str = "QUOTA_EXCEEDED",
    scope: str | None = None,
) -> None:
    """Refuse ``adding`` more of what ``count_sql`` counts when it would pass the org's limit.
    Call inside the creating transaction. ``scope`` narrows the lock (a per-target quota locks
    per target)."""
    if not conn.info.transaction_status:  # idle: not inside a transaction
        raise RuntimeError("quotas.enforce must run inside the creating transaction")
    key = f"{org_id}:{quota}:{scope or ''}"
    await conn.execute(LOCK, {"key": key})
    plan, limit = await limit_of(conn, org_id, quota)
    if limit is None:
        return
    cur = await conn.execute(count_sql, {"org_id": org_id, **(params or {})})
    row = await cur.fetchone()
    current = int((row["n"] if isinstance(row, dict) else row[0]) if row else 0)
    if current + adding > limit:
        raise ApiError(
            422,
            code,
            f"the {plan} plan allows {limit} for {quota}; this would make {current + adding}",
            details={"quota": quota, "current": current, "limit": limit, "plan": plan},
        )
