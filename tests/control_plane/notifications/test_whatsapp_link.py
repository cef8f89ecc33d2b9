"""WhatsApp one-tap linking: mint a code, Meta's signed webhook call brings the message with the
code to ``/hooks/whatsapp``, the org's ``whatsapp_app`` channel exists bound to the sender's
number and alerts reach it as template messages from the platform's number (to a local server
standing in for the Graph API); the code is single-use, polled by id, capped per org, 404
without a platform number and across orgs; unsigned or mis-signed calls change nothing;
``stop`` disables."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from control_plane.domain.notifications import links
from control_plane.settings import Settings, SettingsError, settings_from_env
from tests.conftest import assert_error
from tests.control_plane.notifications.conftest import Env, notify_settings, started
from tests.control_plane.notifications.receiver import threaded_receiver

BASE = "/api/v1/notification-channels"
HOOK = "/hooks/whatsapp"
NUMBER = "15550001111"
PHONE_ID = "106540352242922"
TOKEN = "EAAGplatformtoken0123456789"
SECRET = "meta-app-secret-for-tests"
VERIFY = "verify-me-please"


@pytest.fixture
async def wa(settings: Settings, db_url: str) -> AsyncIterator[Env]:
    async with threaded_receiver() as rec:
        s = notify_settings(settings, rec.url)
        s = dataclasses.replace(
            s,
            notify=dataclasses.replace(
                s.notify,
                base_urls={**s.notify.base_urls, "whatsapp": rec.url},
                whatsapp_number=NUMBER,
                whatsapp_phone_number_id=PHONE_ID,
                whatsapp_access_token=TOKEN,
                whatsapp_app_secret=SECRET,
                whatsapp_verify_token=VERIFY,
                whatsapp_template="vigil_alert",
            ),
        )
        async with started(s, db_url, rec) as env:
            yield env


def notification(phone: str, text: str, name: str = "Kerry", phone_id: str = PHONE_ID) -> bytes:
    """A Cloud API webhook call carrying one text message, as Meta sends it."""
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "102290129340398",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": NUMBER,
                                    "phone_number_id": phone_id,
                                },
                                "contacts": [{"profile": {"name": name}, "wa_id": phone}],
                                "messages": [
                                    {
                                        "from": phone,
                                        "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQz",
                                        "timestamp": "1749416383",
                                        "type": "text",
                                        "text": {"body": text},
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()


def sign(body: bytes, secret: str = SECRET) -> dict[str, str]:
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={mac}", "Content-Type": "application/json"}


async def deliver_hook(env: Env, body: bytes, headers: dict[str, str] | None = None) -> Any:
    return await env.owner.client.post(
        HOOK, content=body, headers=sign(body) if headers is None else headers
    )


def sent(env: Env) -> list[dict[str, Any]]:
    out = []
    for s in env.rec.seen:
        if s.path == f"/v19.0/{PHONE_ID}/messages":
            assert s.headers["Authorization"] == f"Bearer {TOKEN}"
            out.append(s.json())
    return out


async def test_link_code_round_trip_and_delivery(wa: Env) -> None:
    resp = await wa.owner.post(f"{BASE}/whatsapp-link", json={"name": "Kerry's phone"})
    assert resp.status_code == 201, resp.text
    link = resp.json()
    code = link["code"]
    assert link["state"] == "pending"
    assert link["deep_link"] == f"https://wa.me/{NUMBER}?text={code}"
    assert link["group_deep_link"] is None
    assert resp.headers["location"] == f"{BASE}/whatsapp-link/{link['id']}"
    polled = (await wa.owner.get(f"{BASE}/whatsapp-link/{link['id']}")).json()
    assert polled["state"] == "pending" and polled["code"] is None  # shown once
    assert_error(
        await wa.outsider.get(f"{BASE}/whatsapp-link/{link['id']}"), 404, "WHATSAPP_LINK_NOT_FOUND"
    )
    stored = await wa.sql("SELECT code_hash, kind FROM link_codes")
    assert stored[0]["kind"] == "whatsapp_app" and code.encode() not in bytes(
        stored[0]["code_hash"]
    )

    # The prefilled message arrives, signed: the channel exists for the minting org.
    resp = await deliver_hook(wa, notification("16315551181", code))
    assert resp.status_code == 200, resp.text
    (answer,) = sent(wa)
    assert answer["to"] == "16315551181" and answer["type"] == "text"
    assert answer["text"]["body"].startswith("Linked")
    polled = (await wa.owner.get(f"{BASE}/whatsapp-link/{link['id']}")).json()
    assert polled["state"] == "consumed" and polled["channel_id"]
    channel = (await wa.owner.get(f"{BASE}/{polled['channel_id']}")).json()
    assert channel["kind"] == "whatsapp_app" and channel["name"] == "Kerry's phone"
    assert channel["config"] == {
        "type": "whatsapp_app",
        "phone": "+16315551181",
        "profile_name": "Kerry",
    }
    assert_error(await wa.outsider.get(f"{BASE}/{polled['channel_id']}"), 404, "CHANNEL_NOT_FOUND")

    # Meta redelivers the same call: already linked, no second channel, no second answer.
    assert (await deliver_hook(wa, notification("16315551181", code))).status_code == 200
    assert len(sent(wa)) == 1
    # The code is single-use: another number sending it is told so and gets nothing.
    assert (await deliver_hook(wa, notification("447700900123", code))).status_code == 200
    assert sent(wa)[-1]["to"] == "447700900123"
    assert "unknown, used or expired" in sent(wa)[-1]["text"]["body"]
    assert len(await wa.sql("SELECT id FROM channels WHERE kind = 'whatsapp_app'")) == 1

    # Alerts reach the number as the platform's template message; a test send too.
    target = await wa.target([polled["channel_id"]])
    await wa.open_incident(target)
    await wa.deliver()
    alert = sent(wa)[-1]
    assert alert["to"] == "16315551181" and alert["type"] == "template"
    assert alert["template"]["name"] == "vigil_alert"
    assert alert["template"]["language"] == {"code": "en"}
    (param,) = alert["template"]["components"][0]["parameters"]
    assert param["text"].startswith("🔴 DOWN: site") and "\n" not in param["text"]
    resp = await wa.owner.post(f"{BASE}/{polled['channel_id']}/test")
    assert resp.status_code == 200, resp.text
    assert sent(wa)[-1]["template"]["components"][0]["parameters"][0]["text"].startswith("[TEST]")

    # "stop" from the number disables the channel with a reason, and says so.
    assert (await deliver_hook(wa, notification("16315551181", " STOP "))).status_code == 200
    assert sent(wa)[-1]["text"]["body"].startswith("Unlinked")
    channel = (await wa.owner.get(f"{BASE}/{polled['channel_id']}")).json()
    assert channel["enabled"] is False and "WhatsApp" in channel["disabled_reason"]


async def test_unsigned_or_missigned_calls_change_nothing(wa: Env) -> None:
    code = (await wa.owner.post(f"{BASE}/whatsapp-link")).json()["code"]
    body = notification("16315551181", code)
    for headers in (
        {"Content-Type": "application/json"},
        sign(body, "another-secret"),
        {**sign(body), "X-Hub-Signature-256": "sha1=abc"},
    ):
        assert_error(await deliver_hook(wa, body, headers), 401, "WHATSAPP_SIGNATURE_INVALID")
    # Signed for another body: a tampered call.
    tampered = notification("16315551181", code, name="Mallory")
    assert_error(await deliver_hook(wa, tampered, sign(body)), 401, "WHATSAPP_SIGNATURE_INVALID")
    assert await wa.sql("SELECT id FROM channels") == []
    assert sent(wa) == []
    # A message to another number of the business account is not ours to act on.
    assert (
        await deliver_hook(wa, notification("16315551181", code, phone_id="999"))
    ).status_code == 200
    assert await wa.sql("SELECT id FROM channels") == []


async def test_bad_input(wa: Env) -> None:
    for raw in (b"{", b"[1, 2]", b'{"entry": 3}'):
        resp = await deliver_hook(wa, raw)
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["code"] in ("INVALID_JSON", "VALIDATION_ERROR")
    # Messages that are neither a code nor stop, or not text, are ignored.
    for text in ("hello", "link", "x" * 100):
        assert (await deliver_hook(wa, notification("16315551181", text))).status_code == 200
    assert sent(wa) == []
    assert_error(
        await wa.owner.post(f"{BASE}/whatsapp-link", json={"name": 3}), 400, "VALIDATION_ERROR"
    )
    assert_error(
        await wa.owner.post(f"{BASE}/whatsapp-link", json={"nme": "x"}), 400, "UNKNOWN_FIELD"
    )
    assert_error(
        await wa.owner.post(f"{BASE}/whatsapp-link", json={"name": "x" * 101}),
        400,
        "CHANNEL_NAME_INVALID",
    )
    assert_error(await wa.owner.get(f"{BASE}/whatsapp-link/nope"), 404, "WHATSAPP_LINK_NOT_FOUND")
    resp = await wa.owner.post(
        BASE, json={"name": "x", "config": {"type": "whatsapp_app", "phone": "+15550001"}}
    )
    assert_error(resp, 422, "CHANNEL_KIND_MANAGED")


async def test_subscription_handshake(wa: Env) -> None:
    ok = await wa.owner.client.get(
        HOOK,
        params={"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"},
    )
    assert ok.status_code == 200 and ok.text == "1158201444"
    for params in (
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY, "hub.challenge": "1"},
        {},
    ):
        assert_error(await wa.owner.client.get(HOOK, params=params), 403, "WHATSAPP_VERIFY_FAILED")


async def test_outstanding_codes_are_capped_per_org_and_kind(wa: Env) -> None:
    for _ in range(links.MAX_OUTSTANDING):
        assert (await wa.owner.post(f"{BASE}/whatsapp-link")).status_code == 201
    assert_error(await wa.owner.post(f"{BASE}/whatsapp-link"), 422, "WHATSAPP_LINK_LIMIT")
    assert (await wa.outsider.post(f"{BASE}/whatsapp-link")).status_code == 201


async def test_absent_without_a_platform_number(env: Env) -> None:
    assert_error(await env.owner.post(f"{BASE}/whatsapp-link"), 404, "WHATSAPP_LINK_NOT_FOUND")
    assert_error(
        await env.owner.get(f"{BASE}/whatsapp-link/00000000-0000-0000-0000-000000000000"),
        404,
        "WHATSAPP_LINK_NOT_FOUND",
    )
    body = notification("16315551181", "abcdefghijkl")
    assert_error(await deliver_hook(env, body), 404, "WHATSAPP_LINK_NOT_FOUND")
    assert_error(
        await env.owner.client.get(HOOK, params={"hub.mode": "subscribe"}),
        404,
        "WHATSAPP_LINK_NOT_FOUND",
    )


def test_the_platform_number_is_checked_at_start() -> None:
    base = {
        "VIGIL_DATABASE_URL": "postgresql://x",
        "VIGIL_REDIS_URL": "redis://x",
        "VIGIL_SECRET_KEYS": "k1:" + "A" * 43 + "=",
        "VIGIL_TOKEN_KEY": "A" * 43 + "=",
    }
    s = settings_from_env({**base, "VIGIL_WHATSAPP_NUMBER": "+15550001111"})
    assert s.notify.whatsapp_number == "15550001111"
    assert not s.notify.whatsapp_link_enabled  # the id, token and app secret are missing
    full = {
        **base,
        "VIGIL_WHATSAPP_NUMBER": "+15550001111",
        "VIGIL_WHATSAPP_PHONE_NUMBER_ID": PHONE_ID,
        "VIGIL_WHATSAPP_ACCESS_TOKEN": TOKEN,
        "VIGIL_WHATSAPP_APP_SECRET": SECRET,
    }
    assert settings_from_env(full).notify.whatsapp_link_enabled
    for bad in ("wa.me/15550001111", "+1555", "1" * 16):
        with pytest.raises(SettingsError, match="VIGIL_WHATSAPP_NUMBER"):
            settings_from_env({**base, "VIGIL_WHATSAPP_NUMBER": bad})
