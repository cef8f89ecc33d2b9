"""Agents: registration (token issued once), listing, rename, revocation and removal.

What is stored is exactly what ``control_plane.core.auth.provide_agent`` checks: the token's lookup
prefix (``tokens.lookup_prefix``) and its keyed hash (``tokens.token_hash`` under the deployment's
token key); a revoked agent's row no longer matches.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from psycopg import AsyncConnection

from control_plane.core.errors import ApiError, not_found
from control_plane.core.ids import new_id
from control_plane.core.service import Service
from control_plane.core.text import clean_text
from control_plane.db.sql import Queries
from control_plane.domain.regions.service import is_region_id
from control_plane.security import tokens

from .schemas import Agent, AgentCreate, AgentUpdate, NewAgent

Q = Queries.beside(__file__)
MAX_NAME = 100


def agent_not_found() -> ApiError:
    return not_found("AGENT_NOT_FOUND", "agent")


def _unknown_region(region_id: str) -> ApiError:
    return ApiError(422, "UNKNOWN_REGION", f"region '{region_id}' does not exist", "/region")


def _name(value: str) -> str:
    return clean_text(value, field="/name", code="INVALID_NAME", max_len=MAX_NAME)


def _agent(row: dict[str, Any]) -> Agent:
    return Agent(
        id=row["id"],
        name=row["name"],
        region=row["region_id"],
        created_at=row["created_at"],
        last_seen_at=row["last_seen_at"],
        revoked_at=row["revoked_at"],
        token_prefix=row["prefix"],
    )


async def register_agent(
    conn: AsyncConnection[Any], token_key: bytes, data: AgentCreate
) -> NewAgent:
    """Register an agent of a region and issue its token (the CLI and ``vigil dev`` too)."""
    name = _name(data.name)
    if not is_region_id(data.region):
        raise _unknown_region(data.region)
    issued = tokens.issue(token_key, tokens.AGENT_TOKEN_PREFIX)
    params = {
        "id": new_id(),
        "region_id": data.region,
        "name": name,
        "prefix": issued.prefix,
        "hash": issued.hash,
    }
    # An unknown region fails on agents_region_fkey: 422 UNKNOWN_REGION (core/db_errors.py).
    row = await (await conn.execute(Q.insert_agent, params)).fetchone()
    assert row is not None
    return NewAgent(**msgspec.structs.asdict(_agent(row)), token=issued.token)


class AgentService(Service):
    """The operator's agents (no org: agents serve regions of the instance)."""

    async def create(self, data: AgentCreate) -> NewAgent:
        return await register_agent(await self.conn(), self.settings.security.token_key, data)

    async def get(self, agent_id: uuid.UUID) -> Agent:
        conn = await self.conn()
        row = await (await conn.execute(Q.get_agent, {"id": agent_id})).fetchone()
        if row is None:
            raise agent_not_found()
        return _agent(row)

    async def list_page(
        self, *, limit: int, offset: int, region: str | None
    ) -> tuple[list[Agent], int]:
        conn = await self.conn()
        if region is not None and not is_region_id(region):
            raise ApiError(400, "INVALID_QUERY_PARAM", "region is not a region id", "/region")
        params = {"limit": limit, "offset": offset, "region": region}
        rows = await (await conn.execute(Q.list_agents, params)).fetchall()
        total = await (await conn.execute(Q.count_agents, params)).fetchone()
        return [_agent(r) for r in rows], int(total["total"] if total else 0)

    async def update(self, agent_id: uuid.UUID, data: AgentUpdate) -> Agent:
        conn = await self.conn()
        if isinstance(data.name, str):
            params = {"id": agent_id, "name": _name(data.name)}
            row = await (await conn.execute(Q.rename_agent, params)).fetchone()
            if row is None:
                raise agent_not_found()
            return _agent(row)
        return await self.get(agent_id)

    async def revoke(self, agent_id: uuid.UUID) -> Agent:
        """Its token stops authenticating with the next request; the row stays for the record."""
        conn = await self.conn()
        row = await (await conn.execute(Q.revoke_agent, {"id": agent_id})).fetchone()
        if row is None:
            raise agent_not_found()
        return _agent(row)

    async def delete(self, agent_id: uuid.UUID) -> None:
        conn = await self.conn()
        row = await (await conn.execute(Q.delete_agent, {"id": agent_id})).fetchone()
        if row is None:
            raise agent_not_found()
