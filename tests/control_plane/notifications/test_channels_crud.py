"""/api/v1/notification-channels: CRUD, redaction, errors, cross-org 404s, bindings."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest
from litestar.testing import AsyncTestClient

from control_plane.app import create_app
from tests.conftest import Persona, assert_error, make_org
from tests.stack import Stack
from tests.stack import test_settings as make_settings

BASE = "/api/v1/notification-channels"
SLACK = {"type": "slack", "webhook_url": "https://hooks.slack.com/services/T/B/CANARYSECRET123"}
PD_KEY = "a" * 31 + "Z"


async def create(p: Persona, name: str = "Ops Slack", config: Any = None, **kw: Any) -> Any:
    return await p.post(BASE, json={"name": name, "config": config or SLACK, **kw})


async def test_create_get_list_patch_delete(owner: Persona) -> None:
    resp = await create(owner)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert resp.headers["location"] == f"{BASE}/{body['id']}"
    assert body["config"] == {"type": "slack", "webhook_url": "***"}
    assert body["kind"] == "slack" and body["enabled"] and body["verified"]
    assert body["write_source"] == "api"
    assert "CANARYSECRET" not in resp.text
    got = await owner.get(f"{BASE}/{body['id']}")
    assert got.json() == body
    listed = (await owner.get(BASE)).json()
    assert listed["total"] == 1 and listed["limit"] == 50 and listed["offset"] == 0
    assert listed["items"] == [body]
    patched = await owner.patch(
        f"{BASE}/{body['id']}",
        json={"name": "Renamed", "enabled": False},
        headers={"User-Agent": "Terraform/1.6"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Renamed" and not patched.json()["enabled"]
    assert patched.json()["write_source"] == "terraform"
    assert (await owner.delete(f"{BASE}/{body['id']}")).status_code == 204
    assert_error(await owner.get(f"{BASE}/{body['id']}"), 404, "CHANNEL_NOT_FOUND")


async def test_secrets_sealed_at_rest_and_sentinel_refused(owner: Persona, db_url: str) -> None:
    cfg = {
        "type": "webhook",
        "url": "https://hooks.example.com/in/CANARYSECRET123",
        "headers": {"X-Api-Key": "CANARYSECRET123"},
        "secret": "CANARYSECRET123-long-enough",
    }
    body = (await create(owner, "hook", cfg)).json()
    assert body["config"] == {
        "type": "webhook",
        "url": "***",
        "headers": {"X-Api-Key": "***"},
        "secret": "***",
    }
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        row = await (
            await conn.execute("SELECT config::text, secrets::text FROM channels")
        ).fetchone()
    assert row is not None and "CANARYSECRET" not in row[0] + row[1]
    # The read shape sent back is refused (the reference: re-supply the secret or omit config),
    # and the stored secret is untouched.
    resp = await owner.patch(f"{BASE}/{body['id']}", json={"config": body["config"]})
    assert_error(resp, 400, "REDACTION_SENTINEL")
    resp = await owner.patch(f"{BASE}/{body['id']}", json={"name": "renamed-keeps-secret"})
    assert resp.status_code == 200, resp.text
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        after = await (
            await conn.execute("SELECT config::text, secrets::text FROM channels")
        ).fetchone()
    assert after == row
    # A new kind cannot carry the sentinel.
    resp = await owner.patch(
        f"{BASE}/{body['id']}", json={"config": {"type": "slack", "webhook_url": "***"}}
    )
    assert_error(resp, 400, "REDACTION_SENTINEL", "/config/webhook_url")
    assert_error(
        await create(owner, "x", {**SLACK, "webhook_url": "***"}), 400, "REDACTION_SENTINEL"
    )


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"type": "slack", "webhook_url": "http://hooks.slack.com/x"}, "/config/webhook_url"),
        ({"type": "slack", "webhook_url": 3}, "/config/webhook_url"),
        (
            {"type": "discord", "webhook_url": "https://evil.test/api/webhooks/1/x"},
            "/config/webhook_url",
        ),
        ({"type": "discord", "webhook_url": "https://discord.com/other"}, "/config/webhook_url"),
        (
            {"type": "msteams", "webhook_url": "https://x.webhook.office.com/a"},
            "/config/webhook_url",
        ),
        (
            {"type": "google_chat", "webhook_url": "https://x.test/v1/spaces/a"},
            "/config/webhook_url",
        ),
        ({"type": "webhook", "url": "https://x.test/", "secret": "short"}, "/config/secret"),
        ({"type": "webhook", "url": "ftp://x.test/"}, "/config/url"),
        ({"type": "telegram", "bot_token": "", "chat_id": "1"}, "/config/bot_token"),
        ({"type": "pagerduty", "routing_key": "short"}, "/config/routing_key"),
        ({"type": "ntfy", "topic": "a", "server_url": "https://ntfy.sh/sub"}, "/config/server_url"),
        ({"type": "ntfy", "topic": "bad topic"}, "/config/topic"),
        ({"type": "pushover", "token": "x" * 29, "user": "u" * 30}, "/config/token"),
        ({"type": "email", "to": "Oncall@Example.com"}, "/config/to"),
        ({"type": "email", "to": "a@b.c, d@e.f"}, "/config/to"),
        (
            {
                "type": "whatsapp",
                "access_token": "t",
                "phone_number_id": "12",
                "to": "+15551234567",
                "template_name": "Bad-Name",
            },
            "/config/template_name",
        ),
        (
            {"type": "sms", "provider": "twilio", "to": "5551234", "from": "+15551234567"},
            "/config/to",
        ),
        (
            {
                "type": "sms",
                "provider": "twilio",
                "to": "+15551234567",
                "from": "+15551234568",
                "account_sid": "AC12",
                "auth_token": "t",
            },
            "/config/account_sid",
        ),
        (
            {
                "type": "sms",
                "provider": "sinch",
                "to": "+15551234567",
                "from": "Vigil",
                "service_plan_id": "abc",
                "api_token": "t",
                "region": "mars",
            },
            "/config/region",
        ),
        ({"type": "carrier_pigeon"}, "/config/type"),
        ("not an object", "/config"),
    ],
)
async def test_invalid_config(owner: Persona, config: Any, field: str) -> None:
    resp = await owner.post(BASE, json={"name": "x", "config": config})
    assert_error(resp, 400, "INVALID_CHANNEL_CONFIG", field)
    resp = await owner.post(f"{BASE}/test", json={"config": config})
    assert_error(resp, 400, "INVALID_CHANNEL_CONFIG", field)


async def test_missing_and_unknown_config_fields(owner: Persona) -> None:
    resp = await owner.post(BASE, json={"name": "x", "config": {"type": "slack"}})
    assert_error(resp, 400, "MISSING_FIELD", "/config/webhook_url")
    resp = await owner.post(BASE, json={"name": "x", "config": {**SLACK, "extra": 1}})
    assert_error(resp, 400, "UNKNOWN_FIELD", "/config/extra")
    cid = (await create(owner)).json()["id"]
    resp = await owner.patch(f"{BASE}/{cid}", json={"config": {"type": "email"}})
    assert_error(resp, 400, "MISSING_FIELD", "/config/to")


@pytest.mark.parametrize(
    "cfg",
    [
        {"type": "telegram_app", "chat_id": "1", "chat_title": "x"},
        {"type": "whatsapp_app", "phone": "+15551234567", "profile_name": "x"},
    ],
)
async def test_managed_kinds_refused(owner: Persona, cfg: dict[str, str]) -> None:
    assert_error(await create(owner, "x", cfg), 422, "CHANNEL_KIND_MANAGED")
    assert_error(
        await owner.post(f"{BASE}/test", json={"config": cfg}), 422, "CHANNEL_KIND_MANAGED"
    )


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "bad\x01name"])
async def test_bad_names(owner: Persona, name: str) -> None:
    assert_error(await create(owner, name), 400, "CHANNEL_NAME_INVALID", "/name")


async def test_bad_bodies(owner: Persona) -> None:
    resp = await owner.post(BASE, json={"name": "x", "config": SLACK, "write_source": "ui"})
    assert resp.status_code == 400
    resp = await owner.post(BASE, json={"name": 3, "config": SLACK})
    assert resp.status_code == 400
    resp = await owner.post(BASE, content=b"{", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400


async def test_name_taken(owner: Persona, outsider: Persona) -> None:
    assert (await create(owner, "dup")).status_code == 201
    assert_error(await create(owner, "dup"), 422, "CHANNEL_NAME_TAKEN", "/name")
    assert (await create(outsider, "dup")).status_code == 201
    other = (await create(owner, "other")).json()
    assert_error(
        await owner.patch(f"{BASE}/{other['id']}", json={"name": "dup"}),
        422,
        "CHANNEL_NAME_TAKEN",
    )


async def test_quota_is_atomic(owner: Persona, db_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO plan_overrides (org_id, max_notification_channels) VALUES (%s, 3)",
            (owner.org_id,),
        )
    results = await asyncio.gather(*(create(owner, f"c{i}") for i in range(6)))
    codes = sorted(r.status_code for r in results)
    assert codes == [201, 201, 201, 422, 422, 422]
    for r in results:
        if r.status_code == 422:
            err = assert_error(r, 422, "CHANNEL_QUOTA_EXCEEDED")
            assert err["details"]["quota"] == "max_notification_channels"


async def test_ssrf_refused_unless_private_allowed(db_url: str, stack: Stack) -> None:
    settings = make_settings(db_url, stack.redis_url, allow_private=False)
    org_id, token = await make_org(db_url, "Strict")
    async with AsyncTestClient(app=create_app(settings)) as client:
        p = Persona(client, {"Authorization": f"Bearer {token}"}, org_id)
        for url in ("https://127.0.0.1/x", "https://localhost/x", "https://[::ffff:10.0.0.1]/"):
            err = assert_error(
                await create(p, "h", {"type": "webhook", "url": url}),
                400,
                "SSRF_BLOCKED",
                "/config/url",
            )
            assert err["details"]
        resp = await create(p, "h", {"type": "webhook", "url": "http://hooks.example.com/"})
        assert_error(resp, 400, "INVALID_CHANNEL_CONFIG", "/config/url")
        resp = await create(p, "h", {"type": "webhook", "url": "https://hooks.example.com/"})
        assert resp.status_code == 201, resp.text


async def test_cross_org_404_on_every_route(owner: Persona, outsider: Persona) -> None:
    cid = (await create(owner)).json()["id"]
    for method, path, body in [
        ("GET", f"{BASE}/{cid}", None),
        ("PATCH", f"{BASE}/{cid}", {"name": "mine"}),
        ("DELETE", f"{BASE}/{cid}", None),
        ("POST", f"{BASE}/{cid}/test", None),
        ("POST", f"{BASE}/{cid}/resend-verification", None),
    ]:
        kw = {"json": body} if body is not None else {}
        assert_error(await outsider.request(method, path, **kw), 404, "CHANNEL_NOT_FOUND")
    assert (await outsider.get(BASE)).json()["total"] == 0
    assert_error(await outsider.get(f"{BASE}/not-a-uuid"), 404, "CHANNEL_NOT_FOUND")
    assert (await owner.get(f"{BASE}/{cid}")).status_code == 200


async def test_delete_removes_bindings_and_foreign_binding_is_invalid(
    owner: Persona, outsider: Persona
) -> None:
    cid = (await create(owner)).json()["id"]
    foreign = (await create(outsider)).json()["id"]
    target = {
        "name": "site",
        "check": {"type": "http", "url": "https://example.com/"},
        "alerts": [{"channel_id": cid}],
    }
    t = await owner.post("/api/v1/targets", json=target)
    assert t.status_code == 201, t.text
    assert t.json()["alerts"] == [{"channel_id": cid}]
    bad = await owner.post(
        "/api/v1/targets", json={**target, "name": "b", "alerts": [{"channel_id": foreign}]}
    )
    assert_error(bad, 400, "INVALID_ALERT_CONFIG")
    assert (await owner.delete(f"{BASE}/{cid}")).status_code == 204
    assert (await owner.get(f"/api/v1/targets/{t.json()['id']}")).json()["alerts"] == []


async def test_permissions_needed(anon: Persona) -> None:
    assert (await anon.get(BASE)).status_code == 401
    assert (await anon.get(f"{BASE}/{uuid.uuid4()}")).status_code == 401
