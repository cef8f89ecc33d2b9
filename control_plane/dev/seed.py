"""The dev stack's database and demo data: the ``vigil`` database, the demo org and its API
token, and the local agent of region ``default``."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from control_plane.core.auth import Q as AUTH
from control_plane.domain.agents.schemas import AgentCreate
from control_plane.domain.agents.service import register_agent
from control_plane.domain.orgs.service import create_org, create_token
from control_plane.domain.users.service import add_member, create_user
from control_plane.security import tokens

from .envfile import AGENT_TOKEN, API_TOKEN, ORG_ID

DB_NAME = "vigil"
DEMO_ORG_NAME = "Demo"
DEMO_EMAIL = "demo@vigil.local"
DEMO_PASSWORD = "VIGIL_DEV_DEMO_PASSWORD"
AGENT_REGION = "default"
AGENT_NAME = "local-dev"
ORG_EXISTS = "SELECT id FROM orgs WHERE id = %(id)s"
REGION_EXISTS = "SELECT id FROM regions WHERE id = %(id)s"
# dev.env's note that the local region was opened to the demo org (once, see ensure_demo).
PRIVATE_DEFAULT = "VIGIL_DEV_PRIVATE_DEFAULT"
ALLOW_PRIVATE_HERE = f"""
WITH region AS (
    UPDATE regions SET allow_private_targets = true, updated_at = now()
    WHERE id = '{AGENT_REGION}' RETURNING id
)
INSERT INTO region_grants (region_id, org_id, allow_private_targets)
SELECT id, %(org_id)s, true FROM region
ON CONFLICT (region_id, org_id) DO UPDATE SET allow_private_targets = true, updated_at = now()
RETURNING region_id
"""
PRIVATE_NOW = f"""
SELECT r.allow_private_targets AND g.allow_private_targets
FROM regions r JOIN region_grants g ON g.region_id = r.id AND g.org_id = %(org_id)s
WHERE r.id = '{AGENT_REGION}'
"""


def ensure_database(admin_url: str, name: str = DB_NAME) -> str:
    """Create database ``name`` on the embedded server if needed; return its URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if found is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return admin_url.rsplit("/", 1)[0] + "/" + name


async def _token_row(
    conn: psycopg.AsyncConnection[Any], query: str, key: bytes, token: str | None, kind: str
) -> dict[str, Any] | None:
    """The live row of ``token`` when it is valid under ``key``, else None."""
    prefix = tokens.lookup_prefix(token or "", kind)
    if token is None or prefix is None:
        return None
    row: dict[str, Any] | None = await (await conn.execute(query, {"prefix": prefix})).fetchone()
    return row if row is not None and tokens.verify(key, token, bytes(row["hash"])) else None


async def _ensure_demo_user(
    conn: psycopg.AsyncConnection[Any], org_id: uuid.UUID, values: dict[str, str]
) -> bool:
    """The demo user (an owner of the demo org) to sign in with; True when made now."""
    found = await (
        await conn.execute("SELECT id FROM users WHERE email = %(e)s", {"e": DEMO_EMAIL})
    ).fetchone()
    if found is not None:
        return False
    password = values.setdefault(DEMO_PASSWORD, secrets.token_urlsafe(12))
    user_id = await create_user(conn, DEMO_EMAIL, "Demo", password)
    await add_member(conn, org_id, user_id, "OWNER")
    return True


async def ensure_demo(db_url: str, key: bytes, values: dict[str, str]) -> list[str]:
    """Make sure the demo org, its API token and the local agent's token in ``values`` work.

    Whatever is missing or no longer valid (fresh database, revoked token, changed token key) is
    created again and written into ``values``; without a ``default`` region there is no agent
    token. Returns what was created.
    """

    created: list[str] = []
    async with await psycopg.AsyncConnection.connect(
        db_url, autocommit=True, row_factory=dict_row
    ) as conn:
        org_id: uuid.UUID | None = None
        if values.get(ORG_ID):
            row = await (await conn.execute(ORG_EXISTS, {"id": values[ORG_ID]})).fetchone()
            org_id = row["id"] if row else None
        if org_id is None:
            org_id = await create_org(conn, DEMO_ORG_NAME)
            values[ORG_ID] = str(org_id)
            created.append(f"org {DEMO_ORG_NAME!r}")
        api = await _token_row(
            conn, AUTH.api_token_by_prefix, key, values.get(API_TOKEN), tokens.API_TOKEN_PREFIX
        )
        if api is None or api["org_id"] != org_id:
            values[API_TOKEN] = (await create_token(conn, key, org_id, "dev")).token
            created.append("API token")
        if await _ensure_demo_user(conn, org_id, values):
            created.append(f"user {DEMO_EMAIL!r}")
        agent = await _token_row(
            conn, AUTH.agent_by_prefix, key, values.get(AGENT_TOKEN), tokens.AGENT_TOKEN_PREFIX
        )
        if agent is None:
            values.pop(AGENT_TOKEN, None)
            region = await (await conn.execute(REGION_EXISTS, {"id": AGENT_REGION})).fetchone()
            if region is not None:  # an operator may have deleted it
                new = await register_agent(
                    conn, key, AgentCreate(name=AGENT_NAME, region=AGENT_REGION)
                )
                values[AGENT_TOKEN] = new.token
                created.append(f"agent {AGENT_NAME!r} in region {AGENT_REGION!r}")
        if values.get(PRIVATE_DEFAULT) != "1":
            # Once: a developer monitors their own box (a server on 127.0.0.1:3000), so the local
            # region lends its network to the demo org. Turned off later, it stays off.
            found = await (await conn.execute(ALLOW_PRIVATE_HERE, {"org_id": org_id})).fetchone()
            if found is not None:
                values[PRIVATE_DEFAULT] = "1"
                created.append(f"private targets in region {AGENT_REGION!r} for the demo org")
    return created


async def private_here(db_url: str, org_id: str) -> bool:
    """Whether the demo org may probe private addresses from the local region now."""
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        row = await (await conn.execute(PRIVATE_NOW, {"org_id": org_id})).fetchone()
    return bool(row and row[0])


DEMO_PAGE_SLUG = "demo"
# The demo org's published status page, and every one of its targets curated onto it (targets
# made since the last start are added; a slug another org took leaves the page alone).
DEMO_PAGE = """
WITH page AS (
    INSERT INTO status_pages (id, org_id, name, slug, description, published)
    VALUES (%(id)s, %(org_id)s, 'Demo status', %(slug)s, 'The demo org''s monitors', true)
    ON CONFLICT (slug) DO UPDATE SET slug = EXCLUDED.slug
    RETURNING id, org_id
)
INSERT INTO status_page_components (page_id, target_id, org_id, sort_order)
SELECT p.id, t.id, t.org_id, row_number() OVER (ORDER BY t.created_at, t.id)
FROM page p JOIN targets t ON t.org_id = p.org_id
ON CONFLICT DO NOTHING
"""


async def ensure_demo_status_page(db_url: str, org_id: str) -> str | None:
    """The demo status page's path (``/status/demo``), made and filled with the demo org's
    targets; None when the slug belongs to another org."""
    from control_plane.core.ids import new_id

    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        async with conn.transaction():
            await conn.execute(
                DEMO_PAGE, {"id": new_id(), "org_id": org_id, "slug": DEMO_PAGE_SLUG}
            )
            row = await (
                await conn.execute(
                    "SELECT org_id FROM status_pages WHERE slug = %s", (DEMO_PAGE_SLUG,)
                )
            ).fetchone()
    if row is None or str(row[0]) != str(org_id):
        return None
    return f"/status/{DEMO_PAGE_SLUG}"
