"""/api/public/v1/pages/{slug}/…: what a published page shows, from the rollups; headers; a
monitor not curated onto the page is invisible everywhere; no credential ever leaves."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from control_plane.domain.public import schemas
from tests.conftest import Persona, assert_error
from tests.control_plane.status_pages.helpers import (
    PAGES,
    SECRETS,
    add_component,
    make_page,
    make_secret_target,
    make_target,
)

from . import seed

PUB = "/api/public/v1/pages"
CACHE = "public, max-age=10, stale-while-revalidate=30"
FORBIDDEN = {
    "url",
    "host",
    "headers",
    "basic_auth",
    "bearer_token",
    "check",
    "spec",
    "secrets",
    "cause",
    "error",
    "error_sample",
    "regions",
    "org_id",
    "token",
}


async def published(owner: Persona, db_url: str) -> dict[str, Any]:
    """A page with two curated monitors (one carrying every credential), one hidden monitor,
    rollups, an open incident with updates on the curated one and one on the hidden one."""
    page = await make_page(owner, "acme", description="Acme's services")
    api = await make_secret_target(owner, "api internal name")
    web = await make_secret_target(owner, "web", bearer=True)
    hidden = await make_target(owner, "hidden")
    await add_component(owner, page["id"], api, public_name="API", public_group="Core")
    await add_component(owner, page["id"], web, public_name="Website")
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    await seed.hourly(db_url, owner.org_id, api, now - timedelta(days=1), up=99, down=1)
    await seed.hourly(db_url, owner.org_id, api, now - timedelta(days=3), up=100)
    await seed.hourly(db_url, owner.org_id, web, now - timedelta(days=2), up=50, down=50)
    await seed.hourly(db_url, owner.org_id, hidden, now - timedelta(days=1), up=1, down=99)
    inc = await seed.incident(
        db_url,
        owner.org_id,
        api,
        title="API errors",
        updates=[("investigating", "Looking into it"), ("identified", "Found the cause")],
    )
    hidden_inc = await seed.incident(db_url, owner.org_id, hidden, title="Hidden outage")
    return {
        "page": page,
        "api": api,
        "web": web,
        "hidden": hidden,
        "inc": inc,
        "hidden_inc": hidden_inc,
    }


def no_secret(text: str) -> None:
    for s in SECRETS:
        assert s not in text, s


async def test_status_json(owner: Persona, anon: Persona, db_url: str) -> None:
    w = await published(owner, db_url)
    resp = await anon.get(f"{PUB}/acme/status")
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == CACHE
    body = resp.json()
    assert body["page"]["name"] == "Acme status"
    assert [c["name"] for c in body["components"]] == ["API", "Website"]
    api = body["components"][0]
    assert api["status"] == "major_outage" and api["group"] == "Core"
    assert api["uptime_pct"] == round(100 * 199 / 200, 3)
    assert body["components"][1]["status"] == "operational"
    assert body["status"] == "partial_outage"
    (incident,) = body["active_incidents"]
    assert incident["id"] == w["inc"] and incident["title"] == "API errors"
    assert incident["status"] == "identified"
    assert [u["message"] for u in incident["updates"]] == ["Found the cause", "Looking into it"]
    assert "hidden" not in resp.text.lower() and w["hidden"] not in resp.text
    no_secret(resp.text)


async def test_history(owner: Persona, anon: Persona, db_url: str) -> None:
    w = await published(owner, db_url)
    resp = await anon.get(f"{PUB}/acme/components/{w['web']}/history")
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == CACHE
    body = resp.json()
    assert len(body["days"]) == 90
    assert body["days"][-1]["date"] == datetime.now(UTC).date().isoformat()
    two = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    day = next(d for d in body["days"] if d["date"] == two)
    assert day == {"date": two, "uptime_pct": 50.0, "checks": 100, "failed": 50}
    assert body["uptime_pct"] == 50.0
    short = (await anon.get(f"{PUB}/acme/components/{w['web']}/history?days=1")).json()
    assert len(short["days"]) == 1 and short["uptime_pct"] is None
    for bad in ("0", "91", "x"):
        resp = await anon.get(f"{PUB}/acme/components/{w['web']}/history?days={bad}")
        assert resp.status_code == 400, resp.text
    assert_error(
        await anon.get(f"{PUB}/acme/components/{w['hidden']}/history"), 404, "COMPONENT_NOT_FOUND"
    )
    assert_error(await anon.get(f"{PUB}/acme/components/nope/history"), 404, "COMPONENT_NOT_FOUND")


async def test_incidents_and_one_incident(owner: Persona, anon: Persona, db_url: str) -> None:
    w = await published(owner, db_url)
    old = await seed.incident(
        db_url,
        owner.org_id,
        w["web"],
        status="degraded",
        started=datetime.now(UTC) - timedelta(days=2),
        ended=datetime.now(UTC) - timedelta(days=2) + timedelta(minutes=5),
    )
    body = (await anon.get(f"{PUB}/acme/incidents")).json()
    assert body["total"] == 2
    assert [i["id"] for i in body["items"]] == [w["inc"], old]
    assert body["items"][1]["status"] == "resolved"
    assert body["items"][1]["title"] == "Website: degraded performance"
    assert body["items"][1]["resolved_at"] is not None
    page2 = (await anon.get(f"{PUB}/acme/incidents?limit=1&offset=1")).json()
    assert [i["id"] for i in page2["items"]] == [old] and page2["total"] == 2
    one = await anon.get(f"{PUB}/acme/incidents/{w['inc']}")
    assert one.status_code == 200 and one.headers["cache-control"] == CACHE
    assert len(one.json()["updates"]) == 2
    assert_error(
        await anon.get(f"{PUB}/acme/incidents/{w['hidden_inc']}"), 404, "INCIDENT_NOT_FOUND"
    )
    assert_error(await anon.get(f"{PUB}/acme/incidents/{uuid.uuid4()}"), 404, "INCIDENT_NOT_FOUND")
    assert_error(await anon.get(f"{PUB}/acme/incidents/bad"), 404, "INCIDENT_NOT_FOUND")
    no_secret(one.text)


async def test_maintenance(owner: Persona, anon: Persona, db_url: str) -> None:
    w = await published(owner, db_url)
    await seed.maintenance(db_url, owner.org_id, [w["web"]], title="DB upgrade")
    await seed.maintenance(db_url, owner.org_id, [w["api"]], title="Later", active=False)
    await seed.maintenance(db_url, owner.org_id, [w["hidden"]], title="Hidden work")
    resp = await anon.get(f"{PUB}/acme/maintenance")
    assert resp.headers["cache-control"] == CACHE
    items = resp.json()["items"]
    assert [(m["title"], m["status"]) for m in items] == [
        ("DB upgrade", "active"),
        ("Later", "upcoming"),
    ]
    assert items[0]["components"] == [{"id": w["web"], "name": "Website"}]
    status = (await anon.get(f"{PUB}/acme/status")).json()
    assert status["components"][1]["status"] == "under_maintenance"


async def test_rss_is_valid_rss2(owner: Persona, anon: Persona, db_url: str) -> None:
    w = await published(owner, db_url)
    resp = await anon.get(f"{PUB}/acme/incidents.rss")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/rss+xml")
    assert resp.headers["cache-control"] == CACHE
    root = ET.fromstring(resp.content)
    assert root.tag == "rss" and root.attrib["version"] == "2.0"
    channel = root.find("channel")
    assert channel is not None
    for required in ("title", "link", "description"):
        assert channel.findtext(required)
    items = channel.findall("item")
    assert len(items) == 1
    assert items[0].findtext("guid") == w["inc"]
    assert "API errors" in (items[0].findtext("title") or "")
    assert items[0].findtext("link", "").endswith(f"/status/acme/incidents/{w['inc']}")
    from email.utils import parsedate_to_datetime

    assert parsedate_to_datetime(items[0].findtext("pubDate") or "")
    assert "Hidden" not in resp.text
    no_secret(resp.text)


async def test_badges_are_svg(owner: Persona, anon: Persona, db_url: str) -> None:
    w = await published(owner, db_url)
    ns = "{http://www.w3.org/2000/svg}"
    for path, text in [
        (f"{PUB}/acme/badge.svg", "partial outage"),
        (f"{PUB}/acme/badge.svg?component={w['web']}", "operational"),
        (f"{PUB}/acme/badge.svg?component={w['api']}", "major outage"),
        (f"{PUB}/acme/uptime.svg?component={w['web']}&days=90", "50%"),
        (f"{PUB}/acme/uptime.svg", "%"),
    ]:
        resp = await anon.get(path)
        assert resp.status_code == 200, (path, resp.text)
        assert resp.headers["content-type"].startswith("image/svg+xml")
        assert resp.headers["cache-control"] == CACHE
        root = ET.fromstring(resp.content)
        assert root.tag == f"{ns}svg"
        assert text in "".join(root.itertext()), (path, resp.text)
    for path in (
        f"{PUB}/acme/badge.svg?component={w['hidden']}",
        f"{PUB}/acme/badge.svg?component=nope",
        f"{PUB}/acme/uptime.svg?component={w['hidden']}",
    ):
        assert_error(await anon.get(path), 404, "COMPONENT_NOT_FOUND")


async def test_unpublished_and_unknown_pages_are_404(
    owner: Persona, anon: Persona, db_url: str
) -> None:
    w = await published(owner, db_url)
    await owner.patch(f"{PAGES}/{w['page']['id']}", json={"published": False})
    for path in (
        "/status",
        "/incidents",
        "/maintenance",
        "/badge.svg",
        "/incidents.rss",
        f"/incidents/{w['inc']}",
        f"/components/{w['api']}/history",
        "/uptime.svg",
    ):
        assert_error(await anon.get(f"{PUB}/acme{path}"), 404, "PAGE_NOT_FOUND")
        assert_error(await anon.get(f"{PUB}/nope{path}"), 404, "PAGE_NOT_FOUND")
    assert (await anon.get("/status/acme")).status_code == 404


async def test_operator_changes_show_at_once(owner: Persona, anon: Persona, db_url: str) -> None:
    w = await published(owner, db_url)
    assert len((await anon.get(f"{PUB}/acme/status")).json()["components"]) == 2
    await owner.delete(f"{PAGES}/{w['page']['id']}/components/{w['web']}")
    body = (await anon.get(f"{PUB}/acme/status")).json()
    assert [c["name"] for c in body["components"]] == ["API"]
    assert_error(
        await anon.get(f"{PUB}/acme/components/{w['web']}/history"), 404, "COMPONENT_NOT_FOUND"
    )


async def test_public_routes_ignore_credentials_and_need_none(
    owner: Persona, outsider: Persona, anon: Persona, db_url: str
) -> None:
    await published(owner, db_url)
    for who in (anon, outsider, owner):
        assert (await who.get(f"{PUB}/acme/status")).status_code == 200
    bad = await anon.get(f"{PUB}/acme/status", headers={"Authorization": "Bearer nonsense"})
    assert bad.status_code == 200


def _fields(t: Any, seen: set[Any]) -> set[str]:
    """Every field name reachable from a struct type."""
    out: set[str] = set()
    if t in seen:
        return out
    seen.add(t)
    info = msgspec.inspect.type_info(t)
    stack = [info]
    while stack:
        node = stack.pop()
        if isinstance(node, msgspec.inspect.StructType):
            for f in node.fields:
                out.add(f.name)
                stack.append(f.type)
        elif isinstance(node, (msgspec.inspect.ListType, msgspec.inspect.DictType)):
            stack.extend([getattr(node, "item_type", None) or getattr(node, "value_type", None)])
        elif isinstance(node, msgspec.inspect.UnionType):
            stack.extend(node.types)
    return out


def test_wire_types_cannot_carry_credentials() -> None:
    for name in (
        "PublicStatus",
        "ComponentHistory",
        "PublicIncidentPage",
        "PublicIncident",
        "MaintenanceList",
        "SharedMonitor",
    ):
        fields = _fields(getattr(schemas, name), set())
        assert fields, name
        assert not fields & FORBIDDEN, (name, fields & FORBIDDEN)


async def test_public_json_never_has_a_credential(
    owner: Persona, anon: Persona, db_url: str
) -> None:
    w = await published(owner, db_url)
    paths = [
        "/status",
        "/incidents",
        f"/incidents/{w['inc']}",
        "/maintenance",
        f"/components/{w['api']}/history",
        "/incidents.rss",
        "/badge.svg",
        f"/badge.svg?component={w['api']}",
        f"/uptime.svg?component={w['api']}",
    ]
    for p in paths:
        resp = await anon.get(f"{PUB}/acme{p}")
        assert resp.status_code == 200, (p, resp.text)
        no_secret(resp.text)
        assert "api internal name" not in resp.text
    for p in ("/status/acme", f"/status/acme/incidents/{w['inc']}"):
        resp = await anon.get(p)
        assert resp.status_code == 200
        no_secret(resp.text)
