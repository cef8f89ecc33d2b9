"""Every transport against a local server speaking its provider's protocol: request shape,
auth, success and error answers, Retry-After; the SSRF guard at send time."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import pytest

from control_plane.domain.notifications.delivery import Sender
from control_plane.domain.notifications.transports.base import Alert, Context
from control_plane.domain.notifications.transports.registry import TRANSPORTS, parse
from control_plane.settings import NotifySettings
from tests.control_plane.notifications.receiver import Receiver, receiver

STARTED = datetime(2026, 5, 12, 10, 0, tzinfo=UTC)
CANARY = "CANARYSECRET123"


def alert(kind: str = "open", **kw: Any) -> Alert:
    base: dict[str, Any] = dict(
        kind=kind,
        incident_id="0192a1ce-0000-7000-8000-0000000000aa",
        target_id="0192a1ce-0000-7000-8000-0000000000bb",
        target_name="Main Website",
        target_kind="http",
        target_address="https://example.com",
        status="down",
        started_at=STARTED,
        ended_at=datetime(2026, 5, 12, 10, 5, tzinfo=UTC) if kind == "recovery" else None,
        cause="Connection timeout",
        channel_name="ops",
    )
    base.update(kw)
    return Alert(**base)


async def send(rec: Receiver, raw: dict[str, Any], a: Alert, allow_private: bool = True) -> Any:
    cfg = parse(raw)
    kind = raw["type"]
    settings = NotifySettings(base_urls={kind: rec.url}, timeout_secs=2)
    ctx = Context(settings=settings, allow_private=allow_private)
    TRANSPORTS[kind].validate(cfg, ctx)
    sender = Sender(settings, allow_private)
    try:
        return await sender.send(cfg, a, ctx)
    finally:
        await sender.close()


async def test_slack() -> None:
    async with receiver() as rec:
        raw = {"type": "slack", "webhook_url": f"https://hooks.slack.com/services/T/B/{CANARY}"}
        att = await send(rec, raw, alert())
        assert att.outcome == "delivered" and att.status_code == 200
        (req,) = rec.seen
        assert req.path == f"/services/T/B/{CANARY}"
        assert req.headers["Content-Type"] == "application/json"
        assert "Main Website" in req.json()["text"] and set(req.json()) == {"text"}


async def test_discord_waits_and_caps() -> None:
    async with receiver() as rec:
        rec.answer((200, '{"id": "1"}', {"Content-Type": "application/json"}))
        raw = {"type": "discord", "webhook_url": "https://discord.com/api/webhooks/1/tok"}
        att = await send(rec, raw, alert(cause="x" * 5000))
        assert att.outcome == "delivered"
        (req,) = rec.seen
        assert req.query == {"wait": "true"} and req.path == "/api/webhooks/1/tok"
        assert len(req.json()["content"]) == 2000


async def test_discord_400_is_dead() -> None:
    async with receiver() as rec:
        rec.answer((400, '{"message": "Invalid Webhook Token"}', {}))
        raw = {"type": "discord", "webhook_url": "https://discord.com/api/webhooks/1/tok"}
        att = await send(rec, raw, alert())
        assert att.outcome == "dead" and att.status_code == 400
        assert "tok" not in (att.error or "").replace("Token", "")


async def test_msteams_adaptive_card() -> None:
    async with receiver() as rec:
        rec.answer(202)
        raw = {"type": "msteams", "webhook_url": "https://prod-1.westus.logic.azure.com/wf/x"}
        att = await send(rec, raw, alert())
        assert att.outcome == "delivered" and att.status_code == 202
        body = rec.seen[0].json()
        card = body["attachments"][0]
        assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
        assert card["content"]["type"] == "AdaptiveCard"


async def test_google_chat_cap() -> None:
    async with receiver() as rec:
        raw = {"type": "google_chat", "webhook_url": "https://chat.googleapis.com/v1/spaces/A/m"}
        att = await send(rec, raw, alert(cause="y" * 9000))
        assert att.outcome == "delivered"
        assert len(rec.seen[0].json()["text"]) == 4096


async def test_webhook_signed_event() -> None:
    async with receiver() as rec:
        secret = "s" * 20
        raw = {
            "type": "webhook",
            "url": rec.url + "/hook",
            "headers": {"X-Team": "ops"},
            "secret": secret,
        }
        att = await send(rec, raw, alert())
        assert att.outcome == "delivered"
        (req,) = rec.seen
        ts = req.headers["X-Vigil-Timestamp"]
        want = hmac.new(secret.encode(), f"{ts}.".encode() + req.body, hashlib.sha256)
        assert req.headers["X-Vigil-Signature"] == "sha256=" + want.hexdigest()
        assert req.headers["X-Team"] == "ops"
        event = req.json()
        assert event["event"] == "monitor.down"
        assert event["monitor"]["name"] == "Main Website"
        assert event["monitor"]["status"] == "down"
        assert event["incident"]["id"] == "0192a1ce-0000-7000-8000-0000000000aa"
        assert event["incident"]["error_message"] == "Connection timeout"
        await send(rec, {"type": "webhook", "url": rec.url + "/hook"}, alert("recovery"))
        assert rec.seen[1].json()["event"] == "monitor.up"
        assert "X-Vigil-Signature" not in rec.seen[1].headers


async def test_telegram() -> None:
    async with receiver() as rec:
        token = "123456:" + "A" * 30
        raw = {"type": "telegram", "bot_token": token, "chat_id": "-100123"}
        att = await send(rec, raw, alert())
        assert att.outcome == "delivered"
        (req,) = rec.seen
        assert req.path == f"/bot{token}/sendMessage"
        assert req.json()["chat_id"] == "-100123"


async def test_telegram_bad_token_dead_and_scrubbed() -> None:
    async with receiver() as rec:
        token = "123456:" + "B" * 30
        rec.answer((401, f'{{"ok":false,"description":"Unauthorized {token}"}}', {}))
        raw = {"type": "telegram", "bot_token": token, "chat_id": "1"}
        att = await send(rec, raw, alert())
        assert att.outcome == "dead" and att.status_code == 401
        assert token not in (att.error or "")


async def test_whatsapp_template() -> None:
    async with receiver() as rec:
        raw = {
            "type": "whatsapp",
            "access_token": CANARY,
            "phone_number_id": "1055",
            "to": "+15551234567",
            "template_name": "vigil_alert",
        }
        att = await send(rec, raw, alert())
        assert att.outcome == "delivered"
        (req,) = rec.seen
        assert req.path == "/v19.0/1055/messages"
        assert req.headers["Authorization"] == f"Bearer {CANARY}"
        body = req.json()
        assert body["type"] == "template" and body["template"]["name"] == "vigil_alert"
        assert body["template"]["language"] == {"code": "en"}


async def test_pagerduty_trigger_resolve_share_dedup_key() -> None:
    async with receiver() as rec:
        rec.answer((202, '{"status":"success","dedup_key":"x"}', {}))
        raw = {"type": "pagerduty", "routing_key": "R" * 32}
        assert (await send(rec, raw, alert(severity="major"))).outcome == "delivered"
        assert (await send(rec, raw, alert("recovery"))).outcome == "delivered"
        trigger, resolve = (s.json() for s in rec.seen)
        assert rec.seen[0].path == "/v2/enqueue"
        assert trigger["event_action"] == "trigger" and resolve["event_action"] == "resolve"
        assert trigger["dedup_key"] == resolve["dedup_key"] == alert().incident_id
        assert trigger["payload"]["severity"] == "error"
        assert trigger["routing_key"] == "R" * 32


async def test_pagerduty_test_is_trigger_then_resolve_on_throwaway_key() -> None:
    async with receiver() as rec:
        rec.answer(202)
        att = await send(rec, {"type": "pagerduty", "routing_key": "R" * 32}, alert("test"))
        assert att.outcome == "delivered"
        a, b = (s.json() for s in rec.seen)
        assert (a["event_action"], b["event_action"]) == ("trigger", "resolve")
        assert a["dedup_key"] == b["dedup_key"] != alert().incident_id


async def test_ntfy_priorities_and_token() -> None:
    async with receiver() as rec:
        raw = {"type": "ntfy", "topic": "ops-alerts", "access_token": "tk_" + CANARY}
        await send(rec, raw, alert())
        await send(rec, raw, alert("recovery"))
        down, up = rec.seen
        assert down.path == "/" and down.headers["Authorization"] == f"Bearer tk_{CANARY}"
        assert down.json()["priority"] == 4 and down.json()["tags"] == ["rotating_light"]
        assert up.json()["priority"] == 3 and up.json()["tags"] == ["white_check_mark"]
        assert down.json()["topic"] == "ops-alerts"


async def test_pushover_priorities() -> None:
    async with receiver() as rec:
        raw = {"type": "pushover", "token": "a" * 30, "user": "u" * 30, "device": "phone"}
        await send(rec, raw, alert())
        await send(rec, raw, alert(severity="minor"))
        await send(rec, raw, alert("recovery"))
        assert [s.json()["priority"] for s in rec.seen] == [1, 0, -1]
        assert rec.seen[0].path == "/1/messages.json" and rec.seen[0].json()["device"] == "phone"


@pytest.mark.parametrize(
    ("raw", "path", "auth"),
    [
        (
            {"provider": "twilio", "account_sid": "AC" + "0" * 32, "auth_token": CANARY},
            "/2010-04-01/Accounts/AC" + "0" * 32 + "/Messages.json",
            "Basic " + base64.b64encode(f"AC{'0' * 32}:{CANARY}".encode()).decode(),
        ),
        ({"provider": "telnyx", "api_key": CANARY}, "/v2/messages", f"Bearer {CANARY}"),
        ({"provider": "vonage", "api_key": "k", "api_secret": CANARY}, "/sms/json", None),
        (
            {"provider": "plivo", "auth_id": "MA123", "auth_token": CANARY},
            "/v1/Account/MA123/Message/",
            "Basic " + base64.b64encode(f"MA123:{CANARY}".encode()).decode(),
        ),
        (
            {"provider": "sinch", "service_plan_id": "plan1", "api_token": CANARY, "region": "eu"},
            "/xms/v1/plan1/batches",
            f"Bearer {CANARY}",
        ),
    ],
)
async def test_sms_providers(raw: dict[str, Any], path: str, auth: str | None) -> None:
    async with receiver() as rec:
        cfg = {"type": "sms", "to": "+15551234567", "from": "+15557654321", **raw}
        att = await send(rec, cfg, alert(cause="z" * 2000))
        assert att.outcome == "delivered", att
        (req,) = rec.seen
        assert req.path == path
        if auth:
            assert req.headers["Authorization"] == auth
        assert CANARY not in req.body.decode() or raw["provider"] == "vonage"


@pytest.mark.parametrize(
    ("status", "headers", "outcome", "after"),
    [
        (500, {}, "retry", None),
        (503, {"Retry-After": "120"}, "retry", 120.0),
        (429, {"Retry-After": "7"}, "retry", 7.0),
        (408, {}, "retry", None),
        (401, {}, "dead", None),
        (404, {}, "dead", None),
    ],
)
async def test_status_classification(
    status: int, headers: dict[str, str], outcome: str, after: float | None
) -> None:
    async with receiver() as rec:
        rec.answer((status, "nope", headers))
        att = await send(rec, {"type": "webhook", "url": rec.url}, alert())
        assert (att.outcome, att.status_code, att.retry_after) == (outcome, status, after)


async def test_timeout_is_retry() -> None:
    async with receiver() as rec:
        rec.delay = 5
        att = await send(rec, {"type": "webhook", "url": rec.url}, alert())
        assert att.outcome == "retry" and att.error == "timeout"


async def test_redirect_not_followed() -> None:
    async with receiver() as rec:
        rec.answer((302, "", {"Location": "http://169.254.169.254/latest"}))
        att = await send(rec, {"type": "webhook", "url": rec.url}, alert())
        assert att.outcome == "dead" and att.status_code == 302
        assert len(rec.seen) == 1


async def test_ssrf_refused_at_send_with_zero_connections() -> None:
    """A name that resolves to 127.0.0.1 when the delivery is made: refused, nothing connects."""
    connections = 0

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        cfg = parse({"type": "webhook", "url": f"http://localhost:{port}/hook"})
        settings = NotifySettings(timeout_secs=2)
        sender = Sender(settings, allow_private=False)
        try:
            att = await sender.send(cfg, alert(), Context(settings=settings))
        finally:
            await sender.close()
        assert att.outcome == "dead"
        assert att.error is not None and att.error.startswith("SSRF_BLOCKED")
        literal = parse({"type": "webhook", "url": f"http://127.0.0.1:{port}/hook"})
        sender = Sender(settings, allow_private=False)
        try:
            att = await sender.send(literal, alert(), Context(settings=settings))
        finally:
            await sender.close()
        assert att.outcome == "dead" and (att.error or "").startswith("SSRF_BLOCKED")
        assert connections == 0
    finally:
        server.close()
        await server.wait_closed()
