"""The server-rendered pages: /status/{slug} (and ?fragment=1), /status/{slug}/incidents/{id}."""

from __future__ import annotations

from html.parser import HTMLParser

from tests.conftest import Persona
from tests.control_plane.status_pages.helpers import SECRETS

from .test_public_api import CACHE, published


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parse(html: str) -> Collect:
    c = Collect()
    c.feed(html)
    return c


async def test_status_page(owner: Persona, anon: Persona, db_url: str) -> None:
    w = await published(owner, db_url)
    resp = await anon.get("/status/acme")
    assert resp.status_code == 200
    assert w["hidden"] not in resp.text
    assert resp.headers["content-type"].startswith("text/html")
    assert resp.headers["cache-control"] == CACHE
    assert "default-src 'self'" in resp.headers["content-security-policy"]
    html = resp.text
    assert '<html lang="en">' in html and "Acme status" in html
    assert "Partial outage" in html and "API errors" in html and "Found the cause" in html
    assert "Core" in html and "Website" in html
    assert "prefers-color-scheme:dark" in html
    tags = parse(html).tags
    bars = [a for t, a in tags if t == "ol" and "bar" in (a.get("class") or "")]
    assert len(bars) == 2
    cells = [a for t, a in tags if t == "li" and a.get("tabindex") == "0"]
    assert len(cells) == 180
    assert all(a.get("title") and a.get("aria-label") for a in cells)
    assert any("50%" in (a.get("title") or "") for a in cells)
    times = [a for t, a in tags if t == "time"]
    assert times and all((a.get("datetime") or "").endswith("Z") for a in times)
    # No request leaves the origin: no absolute URL in any src/href.
    for _t, a in tags:
        for attr in ("src", "href"):
            value = a.get(attr) or ""
            assert not value.startswith(("http:", "https:", "//")), value
    assert "hidden" not in html.lower()
    for s in SECRETS:
        assert s not in html


async def test_fragment_is_the_dynamic_region(owner: Persona, anon: Persona, db_url: str) -> None:
    await published(owner, db_url)
    resp = await anon.get("/status/acme?fragment=1")
    assert resp.status_code == 200
    html = resp.text.strip()
    assert html.startswith('<main id="status"') and html.endswith("</main>")
    assert "<html" not in html and "<head" not in html
    assert "API errors" in html


async def test_incident_page(owner: Persona, anon: Persona, db_url: str) -> None:
    w = await published(owner, db_url)
    resp = await anon.get(f"/status/acme/incidents/{w['inc']}")
    assert resp.status_code == 200
    assert "API errors" in resp.text and "Looking into it" in resp.text
    for bad in (w["hidden_inc"], "nope"):
        resp = await anon.get(f"/status/acme/incidents/{bad}")
        assert resp.status_code == 404
        assert "Not found" in resp.text
    assert (await anon.get("/status/nope")).status_code == 404


async def test_branding_logo_and_hidden_footer(owner: Persona, anon: Persona, db_url: str) -> None:
    w = await published(owner, db_url)
    await owner.patch(
        f"/api/v1/status-pages/{w['page']['id']}",
        json={"brand_color": "#aa0000", "hide_branding": True},
    )
    html = (await anon.get("/status/acme")).text
    assert "--brand:#aa0000" in html
    assert "Powered by Vigil" not in html
