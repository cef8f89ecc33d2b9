"""Orgs and their API tokens (CLI and tests; no tenant route creates orgs)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from control_plane.core.ids import new_id
from control_plane.db.sql import Queries
from control_plane.security import tokens

Q = Queries.beside(__file__)


@dataclass(frozen=True, slots=True)
class NewToken:
    id: uuid.UUID
    org_id: uuid.UUID
    token: str  # shown once


async def create_org(conn: AsyncConnection[Any], name: str) -> uuid.UUID:
    org_id = new_id()
    await conn.execute(Q.insert_org, {"id": org_id, "name": name})
    return org_id


async def create_token(
    conn: AsyncConnection[Any],
    token_key: bytes,
    org_id: uuid.UUID,
    name: str = "default",
    permissions: frozenset[str] | None = None,
) -> NewToken:
    """A new API key of the org, shown once; ``permissions`` None is full access."""
    issued = tokens.issue(token_key, tokens.API_TOKEN_PREFIX)
    token_id = new_id()
    row = await (
        await conn.execute(
            Q.insert_token,
            {
                "id": token_id,
                "org_id": org_id,
                "name": name,
                "prefix": issued.prefix,
                "hash": issued.hash,
                "permissions": None if permissions is None else sorted(permissions),
                "last4": issued.token[-4:],
            },
        )
    ).fetchone()
    if row is None:
        raise LookupError(f"org {org_id} does not exist")
    return NewToken(token_id, org_id, issued.token)


async def list_tokens(conn: AsyncConnection[Any], org_id: uuid.UUID) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await (
        await conn.execute(Q.list_tokens, {"org_id": org_id})
    ).fetchall()
    return rows


async def revoke_token(conn: AsyncConnection[Any], token_id: uuid.UUID) -> dict[str, Any] | None:
    """Revoke an API token at once; None when there is no such token."""
    row: dict[str, Any] | None = await (
        await conn.execute(Q.revoke_token, {"id": token_id})
    ).fetchone()
    return row
