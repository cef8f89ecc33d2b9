"""Shared steps of the status-page tests."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from tests.conftest import Persona

PAGES = "/api/v1/status-pages"

SECRET_URL = "https://secret-host.internal.example/health?key=s3cr3t"
SECRET_TOKEN = "tok_SUPERSECRETBEARER"
SECRET_PASSWORD = "pw_SUPERSECRETBASIC"
SECRET_HEADER = "hdr_SUPERSECRETHEADER"
SECRETS = ("secret-host", "s3cr3t", SECRET_TOKEN, SECRET_PASSWORD, SECRET_HEADER)


async def make_target(persona: Persona, name: str = "api", **check: Any) -> str:
    body = {
        "name": name,
        "check": {"type": "http", "url": "https://example.com/healthz", **check},
    }
    resp = await persona.post("/api/v1/targets", json=body)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def make_secret_target(
    persona: Persona, name: str = "secret api", *, bearer: bool = False
) -> str:
    """A target carrying credentials: a secret url, a secret header and basic auth, or (one
    Authorization header per request) the bearer token instead of basic auth."""
    auth: dict[str, Any] = (
        {"bearer_token": SECRET_TOKEN} if bearer else {"basic_auth": ["admin", SECRET_PASSWORD]}
    )
    return await make_target(
        persona, name, url=SECRET_URL, headers={"X-Api-Key": SECRET_HEADER}, **auth
    )


async def make_page(persona: Persona, slug: str = "acme", **fields: Any) -> dict[str, Any]:
    body = {"name": "Acme status", "slug": slug, "published": True, **fields}
    resp = await persona.post(PAGES, json=body)
    assert resp.status_code == 201, resp.text
    page: dict[str, Any] = resp.json()
    return page


async def add_component(
    persona: Persona, page_id: str, target_id: str, **fields: Any
) -> dict[str, Any]:
    resp = await persona.post(
        f"{PAGES}/{page_id}/components", json={"target_id": target_id, **fields}
    )
    assert resp.status_code == 201, resp.text
    comp: dict[str, Any] = resp.json()
    return comp


async def sql(db_url: str, query: str, *params: Any) -> list[Any]:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute(query, params)
        return await cur.fetchall() if cur.description else []


async def set_plan_limit(db_url: str, org_id: uuid.UUID, column: str, value: int) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            psycopg.sql.SQL(
                "INSERT INTO plan_overrides (org_id, {c}) VALUES (%s, %s)"
                " ON CONFLICT (org_id) DO UPDATE SET {c} = EXCLUDED.{c}"
            ).format(c=psycopg.sql.Identifier(column)),
            (org_id, value),
        )
