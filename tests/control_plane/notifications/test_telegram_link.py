"""Telegram one-tap linking against a local server speaking the Bot API's shape
(``getUpdates`` with ``offset`` confirming earlier updates, ``sendMessage``): mint a code, the
bot receives it, the org's ``telegram_app`` channel exists and alerts reach the chat; the code is
single-use, polled by id, capped per org, 404 without a bot and across orgs; ``/stop`` disables."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from control_plane.domain.notifications import links, telegram_link
from control_plane.settings import Settings
from tests.conftest import assert_error
from tests.control_plane.notifications.conftest import Env, notify_settings, started
from tests.control_plane.notifications.receiver import receiver

BASE = "/api/v1/notification-channels"
TOKEN = "123456789:AAFakeTokenForTheLocalBotApi_0123456"
BOT = "vigil_test_bot"


@dataclass
class FakeBotApi:
    """Updates queued by the test; ``getUpdates`` answers those with ``update_id >= offset``
    (Telegram forgets the earlier ones), ``sendMessage`` records what was sent."""

    url: str = ""
    updates: list[dict[str, Any]] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 100

    def message(self, chat: dict[str, Any], text: str) -> None:
        self.updates.append({"update_id": self.next_id, "message": {"chat": chat, "text": text}})
        self.next_id += 1

    async def handle(self, request: web.Request) -> web.Response:
        token, _, method = request.match_info["tail"].partition("/")
        if token != "bot" + TOKEN:
            return web.json_response({"ok": False, "error_code": 401}, status=401)
        body = json.loads(await request.read() or b"{}")
        if method == "getUpdates":
            offset = int(body.get("offset", 0))
            self.offsets.append(offset)
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
            return web.json_response({"ok": True, "result": self.updates})
        if method == "sendMessage":
            self.sent.append(body)
            return web.json_response({"ok": True, "result": {"message_id": len(self.sent)}})
        return web.json_response({"ok": False, "error_code": 404}, status=404)


@pytest.fixture
def bot_api() -> Iterator[FakeBotApi]:
    api = FakeBotApi()
    ready = threading.Event()
    box: dict[str, Any] = {}

    def serve() -> None:
        loop = asyncio.new_event_loop()

        async def main() -> None:
            app = web.Application()
            app.router.add_post("/{tail:.*}", api.handle)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            assert site._server is not None
            api.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[attr-defined]
            box["stop"] = asyncio.Event()
            ready.set()
            await box["stop"].wait()
            await runner.cleanup()

        box["loop"] = loop
        loop.run_until_complete(main())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    yield api
    box["loop"].call_soon_threadsafe(box["stop"].set)
    thread.join(10)


@pytest.fixture
async def tg(settings: Settings, db_url: str, bot_api: FakeBotApi) -> AsyncIterator[Env]:
    async with receiver() as rec:
        s = notify_settings(settings, rec.url)
        s = dataclasses.replace(
            s,
            notify=dataclasses.replace(
                s.notify,
                base_urls={**s.notify.base_urls, "telegram": bot_api.url},
                telegram_bot_token=TOKEN,
                telegram_bot_username=BOT,
            ),
        )
        async with started(s, db_url, rec) as env:
            yield env


async def poll(env: Env) -> int:
    ctx: dict[str, Any] = {"resources": env.res}
    try:
        return await telegram_link.poll(ctx)
    finally:
        await telegram_link.close(ctx)


GROUP = {"id": -1001234567, "type": "group", "title": "Ops room"}


async def test_link_code_round_trip_and_delivery(tg: Env, bot_api: FakeBotApi) -> None:
    resp = await tg.owner.post(f"{BASE}/telegram-link", json={"name": "On-call"})
    assert resp.status_code == 201, resp.text
    link = resp.json()
    code = link["code"]
    assert link["state"] == "pending"
    assert link["deep_link"] == f"https://t.me/{BOT}?start={code}"
    assert link["group_deep_link"] == f"https://t.me/{BOT}?startgroup={code}"
    assert resp.headers["location"].endswith(link["id"])
    polled = (await tg.owner.get(f"{BASE}/telegram-link/{link['id']}")).json()
    assert polled["state"] == "pending" and polled["code"] is None  # shown once
    assert_error(
        await tg.outsider.get(f"{BASE}/telegram-link/{link['id']}"), 404, "TELEGRAM_LINK_NOT_FOUND"
    )
    stored = await tg.sql("SELECT code_hash FROM link_codes")
    assert code.encode() not in bytes(stored[0]["code_hash"])

    bot_api.message(GROUP, f"/link@{BOT} {code}")
    assert await poll(tg) == 1
    assert bot_api.offsets == [0]
    assert bot_api.sent[-1]["chat_id"] == str(GROUP["id"])
    assert bot_api.sent[-1]["text"].startswith("Linked")
    polled = (await tg.owner.get(f"{BASE}/telegram-link/{link['id']}")).json()
    assert polled["state"] == "consumed" and polled["channel_id"]
    channel = (await tg.owner.get(f"{BASE}/{polled['channel_id']}")).json()
    assert channel["kind"] == "telegram_app" and channel["name"] == "On-call"
    assert channel["config"] == {
        "type": "telegram_app",
        "chat_id": str(GROUP["id"]),
        "chat_title": "Ops room",
    }
    assert_error(await tg.outsider.get(f"{BASE}/{polled['channel_id']}"), 404, "CHANNEL_NOT_FOUND")

    # The update is confirmed: the next poll asks from past it. The code is single-use.
    bot_api.message({"id": 42, "type": "private", "first_name": "Eve"}, f"/start {code}")
    assert await poll(tg) == 1
    assert bot_api.offsets[-1] == 101
    assert (
        bot_api.sent[-1]["chat_id"] == "42"
        and "unknown, used or expired" in bot_api.sent[-1]["text"]
    )
    assert len(await tg.sql("SELECT id FROM channels WHERE kind = 'telegram_app'")) == 1

    # Alerts reach the chat through the operator's bot; a test send too.
    target = await tg.target([polled["channel_id"]])
    await tg.open_incident(target)
    await tg.deliver()
    assert bot_api.sent[-1]["chat_id"] == str(GROUP["id"])
    assert bot_api.sent[-1]["text"].startswith("🔴 DOWN: site")
    resp = await tg.owner.post(f"{BASE}/{polled['channel_id']}/test")
    assert resp.status_code == 200, resp.text
    assert bot_api.sent[-1]["text"].startswith("[TEST]")

    # /stop from the chat disables the channel with a reason.
    bot_api.message(GROUP, "/stop")
    await poll(tg)
    channel = (await tg.owner.get(f"{BASE}/{polled['channel_id']}")).json()
    assert channel["enabled"] is False and "Telegram" in channel["disabled_reason"]


async def test_outstanding_codes_are_capped(tg: Env) -> None:
    # No body, and a JSON null body, are both "no name hint".
    resp = await tg.owner.post(
        f"{BASE}/telegram-link", content=b"null", headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 201, resp.text
    for _ in range(links.MAX_OUTSTANDING - 1):
        assert (await tg.owner.post(f"{BASE}/telegram-link")).status_code == 201
    assert_error(await tg.owner.post(f"{BASE}/telegram-link"), 422, "TELEGRAM_LINK_LIMIT")
    assert (await tg.outsider.post(f"{BASE}/telegram-link")).status_code == 201


async def test_bad_input(tg: Env) -> None:
    assert_error(
        await tg.owner.post(f"{BASE}/telegram-link", json={"name": 3}), 400, "VALIDATION_ERROR"
    )
    assert_error(
        await tg.owner.post(f"{BASE}/telegram-link", json={"nme": "x"}), 400, "UNKNOWN_FIELD"
    )
    assert_error(await tg.owner.get(f"{BASE}/telegram-link/nope"), 404, "TELEGRAM_LINK_NOT_FOUND")
    resp = await tg.owner.post(
        BASE, json={"name": "x", "config": {"type": "telegram_app", "chat_id": "1"}}
    )
    assert_error(resp, 422, "CHANNEL_KIND_MANAGED")


async def test_absent_without_a_bot(env: Env) -> None:
    assert_error(await env.owner.post(f"{BASE}/telegram-link"), 404, "TELEGRAM_LINK_NOT_FOUND")
    assert_error(
        await env.owner.get(f"{BASE}/telegram-link/00000000-0000-0000-0000-000000000000"),
        404,
        "TELEGRAM_LINK_NOT_FOUND",
    )
