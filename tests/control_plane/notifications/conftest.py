"""A control plane whose notification transports point at a local receiver."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from psycopg.rows import dict_row

from control_plane.app import create_app
from control_plane.core.state import Resources
from control_plane.domain.notifications import outbox
from control_plane.domain.notifications.jobs import Deliverer
from control_plane.settings import NotifySettings, Settings
from tests.conftest import Persona, make_org
from tests.control_plane.notifications.receiver import Receiver, receiver

KINDS = ("slack", "discord", "msteams", "google_chat", "telegram", "pagerduty", "pushover", "ntfy")


@dataclass
class Env:
    app: Litestar
    owner: Persona
    outsider: Persona
    rec: Receiver
    db_url: str

    @property
    def res(self) -> Resources:
        res: Resources = self.app.state.resources
        return res

    async def deliver(self) -> int:
        d = Deliverer(self.res)
        try:
            return await d.run_once()
        finally:
            await d.close()

    async def sql(self, query: str, *params: Any) -> list[dict[str, Any]]:
        async with await psycopg.AsyncConnection.connect(
            self.db_url, autocommit=True, row_factory=dict_row
        ) as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall() if cur.description else []

    async def channel(self, config: dict[str, Any], name: str = "hook") -> str:
        resp = await self.owner.post(
            "/api/v1/notification-channels", json={"name": name, "config": config}
        )
        assert resp.status_code == 201, resp.text
        cid: str = resp.json()["id"]
        return cid

    async def target(self, channel_ids: list[str], name: str = "site", **kw: Any) -> str:
        body = {
            "name": name,
            "check": {"type": "http", "url": "https://example.com/health"},
            "alerts": [{"channel_id": c} for c in channel_ids],
            **kw,
        }
        resp = await self.owner.post("/api/v1/targets", json=body)
        assert resp.status_code == 201, resp.text
        tid: str = resp.json()["id"]
        return tid

    async def open_incident(self, target_id: str) -> str:
        """An incident opened the way the engine opens one: the row and its outbox rows in one
        transaction (``outbox.incidents_opened`` is what the engine calls)."""
        async with await psycopg.AsyncConnection.connect(self.db_url, row_factory=dict_row) as conn:
            async with conn.transaction():
                row = await (
                    await conn.execute(
                        "INSERT INTO incidents (id, org_id, target_id, started_at, status, cause)"
                        " SELECT gen_random_uuid(), org_id, id, now(), 'down', 'HTTP 503'"
                        " FROM targets WHERE id = %s RETURNING id",
                        (target_id,),
                    )
                ).fetchone()
                assert row is not None
                await outbox.incidents_opened(conn, [row["id"]])
        return str(row["id"])

    async def close_incident(self, incident_id: str) -> None:
        async with await psycopg.AsyncConnection.connect(self.db_url) as conn:
            async with conn.transaction():
                await conn.execute(
                    "UPDATE incidents SET ended_at = now(), closed_at = now() WHERE id = %s",
                    (incident_id,),
                )
                await outbox.incidents_closed(conn, [incident_id])  # type: ignore[arg-type]

    async def notifications(self, incident_id: str) -> list[dict[str, Any]]:
        resp = await self.owner.get(f"/api/v1/incidents/{incident_id}/notifications")
        assert resp.status_code == 200, resp.text
        items: list[dict[str, Any]] = resp.json()["items"]
        return items


def notify_settings(settings: Settings, url: str, **kw: Any) -> Settings:
    # No chat hold unless a test asks for one: a run sends what is due at once.
    kw = {"chat_hold_secs": 0.0, "storm_followup_secs": 0.0, **kw}
    notify = NotifySettings(
        base_urls={k: url for k in KINDS},
        timeout_secs=1.0,
        backoff_base_secs=0.0,
        **kw,
    )
    return dataclasses.replace(settings, notify=notify)


@asynccontextmanager
async def started(settings: Settings, db_url: str, rec: Receiver) -> AsyncIterator[Env]:
    """The app on ``settings``, started, with two orgs (Acme the owner, Umbrella the outsider)
    and ``rec`` as the receiver."""
    async with AsyncTestClient(app=create_app(settings)) as client:
        org, token = await make_org(db_url, "Acme")
        other, other_token = await make_org(db_url, "Umbrella")
        yield Env(
            client.app,
            Persona(client, {"Authorization": f"Bearer {token}"}, org),
            Persona(client, {"Authorization": f"Bearer {other_token}"}, other),
            rec,
            db_url,
        )


@pytest.fixture
async def env(settings: Settings, db_url: str) -> AsyncIterator[Env]:
    async with receiver() as rec:
        s = notify_settings(settings, rec.url, circuit_threshold=3)
        async with started(s, db_url, rec) as e:
            yield e
