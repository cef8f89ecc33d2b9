"""A real browser (Debian's headless Chromium, driven by Playwright) loads the status page, an
incident page and a share page from a running ``vigil serve``: the text it renders, no console
error, no request leaving the origin, and a screenshot of each under the test's tmp dir."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.control_plane.public import seed
from tests.e2e.processes import System

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()


@pytest.fixture
async def system(db_url: str, stack: Any, tmp_path: Path) -> AsyncIterator[System]:
    s = System(db_url=db_url, redis_url=stack.redis_url, workdir=tmp_path)
    await s.start_control_plane()
    try:
        yield s
    finally:
        s.stop_all()


async def seed_page(system: System) -> dict[str, str]:
    targets = []
    for name in ("api", "web"):
        t = await system.api(
            "POST",
            "/api/v1/targets",
            {"name": name, "check": {"type": "http", "url": f"https://{name}.example.com/"}},
        )
        targets.append(t["id"])
    page = await system.api(
        "POST", "/api/v1/status-pages", {"name": "Acme status", "slug": "acme", "published": True}
    )
    await system.api(
        "POST",
        f"/api/v1/status-pages/{page['id']}/components",
        {"target_id": targets[0], "public_name": "Public API", "public_group": "Core"},
    )
    await system.api(
        "POST",
        f"/api/v1/status-pages/{page['id']}/components",
        {"target_id": targets[1], "public_name": "Website"},
    )
    rows = await seed_rows(system, targets)
    share = await system.api("POST", f"/api/v1/targets/{targets[0]}/shares", {"label": "demo"})
    return {"incident": rows, "token": share["token"]}


async def seed_rows(system: System, targets: list[str]) -> str:
    import psycopg

    async with await psycopg.AsyncConnection.connect(system.db_url, autocommit=True) as conn:
        cur = await conn.execute("SELECT org_id FROM targets WHERE id = %s", (targets[0],))
        row = await cur.fetchone()
        assert row is not None
        org_id = row[0]
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for d in range(1, 30):
        await seed.hourly(system.db_url, org_id, targets[0], now - timedelta(days=d), up=60)
        await seed.hourly(
            system.db_url,
            org_id,
            targets[1],
            now - timedelta(days=d),
            up=57,
            down=3 if d == 5 else 0,
        )
    for h in range(1, 6):
        await seed.hourly(system.db_url, org_id, targets[0], now - timedelta(hours=h), up=60)
    return await seed.incident(
        system.db_url,
        org_id,
        targets[0],
        title="Elevated API errors",
        updates=[("investigating", "We are looking into it")],
    )


def watch(page: Any, host: str, errors: list[str], foreign: list[str]) -> None:
    """Collect console errors, page errors and requests to any other origin."""
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: foreign.append(r.url) if urlsplit(r.url).netloc != host else None)


async def test_pages_render_in_a_real_browser(system: System, tmp_path: Path) -> None:
    if not HAVE_CHROMIUM:
        pytest.skip("no chromium binary (apt-get install chromium)")
    from playwright.async_api import async_playwright

    seeded = await seed_page(system)
    origin = system.base_url
    host = urlsplit(origin).netloc
    pages = [
        (
            "status",
            "/status/acme",
            [
                "Acme status",
                "Partial outage",
                "Public API",
                "Website",
                "Elevated API errors",
                "We are looking into it",
            ],
        ),
        (
            "incident",
            f"/status/acme/incidents/{seeded['incident']}",
            ["Elevated API errors", "We are looking into it", "All systems"],
        ),
        ("share", f"/m/{seeded['token']}", ["api", "Major outage", "Latency, last 24 hours"]),
    ]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            for scheme in ("light", "dark"):
                ctx = await browser.new_context(
                    color_scheme=scheme, viewport={"width": 390, "height": 844}
                )
                page = await ctx.new_page()
                errors: list[str] = []
                foreign: list[str] = []
                watch(page, host, errors, foreign)
                for name, path, texts in pages:
                    resp = await page.goto(origin + path)
                    assert resp is not None and resp.status == 200, (path, resp and resp.status)
                    body = await page.inner_text("body")
                    for text in texts:
                        assert text in body, (name, text)
                    await page.screenshot(
                        path=str(tmp_path / f"{name}-{scheme}.png"), full_page=True
                    )
                cells = await page.goto(origin + "/status/acme")
                assert cells is not None
                count = await page.locator("ol.bar li").count()
                assert count == 180
                first = page.locator("ol.bar li").last
                await first.focus()
                assert "uptime" not in (await first.get_attribute("title") or "x")
                assert not errors, errors
                assert not foreign, foreign
                await ctx.close()
        finally:
            await browser.close()
    assert (tmp_path / "status-light.png").stat().st_size > 1000
    assert (tmp_path / "share-dark.png").exists()
