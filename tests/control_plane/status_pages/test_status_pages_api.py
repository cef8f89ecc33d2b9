"""/api/v1/status-pages: CRUD, the global slug, branding and custom CSS, components, reorder,
logo upload, per-org caps and cross-org 404s."""

from __future__ import annotations

import uuid

from tests.conftest import Persona, assert_error

from .helpers import PAGES, add_component, make_page, make_target, set_plan_limit, sql

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def test_create_get_list_update_delete(owner: Persona) -> None:
    page = await make_page(owner, "acme", description="Our services", brand_color="#112233")
    assert page["slug"] == "acme" and page["published"] is True
    assert page["url"].endswith("/status/acme")
    assert page["logo_url"] is None and page["component_count"] == 0
    got = (await owner.get(f"{PAGES}/{page['id']}")).json()
    assert got == page
    listing = (await owner.get(PAGES)).json()
    assert listing["total"] == 1 and listing["items"][0]["id"] == page["id"]

    resp = await owner.patch(
        f"{PAGES}/{page['id']}", json={"name": "Acme", "slug": "acme-2", "published": False}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["slug"] == "acme-2" and resp.json()["published"] is False
    resp = await owner.patch(f"{PAGES}/{page['id']}", json={"brand_color": None})
    assert resp.json()["brand_color"] is None and resp.json()["name"] == "Acme"

    assert (await owner.delete(f"{PAGES}/{page['id']}")).status_code == 204
    assert_error(await owner.get(f"{PAGES}/{page['id']}"), 404, "STATUS_PAGE_NOT_FOUND")


async def test_create_writes_audit_log(owner: Persona, db_url: str) -> None:
    page = await make_page(owner)
    rows = await sql(db_url, "SELECT action FROM audit_log WHERE resource_id = %s", page["id"])
    assert ("status_page.create",) in rows


async def test_slug_is_globally_unique(owner: Persona, outsider: Persona) -> None:
    await make_page(owner, "shared")
    assert_error(
        await outsider.post(PAGES, json={"name": "x", "slug": "shared"}), 409, "SLUG_TAKEN", "/slug"
    )
    other = await make_page(outsider, "other")
    assert_error(
        await outsider.patch(f"{PAGES}/{other['id']}", json={"slug": "shared"}),
        409,
        "SLUG_TAKEN",
    )


async def test_bad_input(owner: Persona) -> None:
    cases = [
        ({"name": "", "slug": "a"}, "INVALID_NAME", "/name"),
        ({"name": "x" * 101, "slug": "a"}, "INVALID_NAME", "/name"),
        ({"name": "x", "slug": "Bad Slug"}, "INVALID_SLUG", "/slug"),
        ({"name": "x", "slug": "-a"}, "INVALID_SLUG", "/slug"),
        ({"name": "x", "slug": "a" * 51}, "INVALID_SLUG", "/slug"),
        ({"name": "x", "slug": 5}, "INVALID_SLUG", "/slug"),
        ({"name": "x", "slug": "a", "brand_color": "red"}, "INVALID_BRAND_COLOR", "/brand_color"),
        ({"name": "x", "slug": "a", "description": "d" * 501}, "INVALID_DESCRIPTION", None),
        ({"name": "x", "slug": "a", "custom_css": "a" * 20001}, "INVALID_CUSTOM_CSS", None),
        ({"name": "x", "slug": "a", "nope": 1}, "UNKNOWN_FIELD", None),
        ({"slug": "a"}, "MISSING_FIELD", None),
    ]
    for body, code, field in cases:
        assert_error(await owner.post(PAGES, json=body), 400, code, field)
    assert_error(await owner.get(f"{PAGES}/not-a-uuid"), 404, "STATUS_PAGE_NOT_FOUND")
    assert_error(
        await owner.patch(f"{PAGES}/{uuid.uuid4()}", json={}), 404, "STATUS_PAGE_NOT_FOUND"
    )


async def test_custom_css_cannot_leave_style(owner: Persona, anon: Persona) -> None:
    evil = "body{color:red}</style><script>alert(1)</script><style>"
    page = await make_page(owner, "css", custom_css=evil)
    assert "<" not in page["custom_css"]
    assert "color:red" in page["custom_css"]
    html = (await anon.get("/status/css")).text
    assert "<script>alert(1)" not in html
    assert html.count("</style>") == html.count("<style")


async def test_page_cap_names_quota(owner: Persona, db_url: str) -> None:
    await set_plan_limit(db_url, owner.org_id, "max_status_pages", 1)
    await make_page(owner, "one")
    err = assert_error(
        await owner.post(PAGES, json={"name": "x", "slug": "two"}), 422, "QUOTA_EXCEEDED"
    )
    assert err["details"]["quota"] == "max_status_pages"


async def test_components_crud_and_reorder(owner: Persona) -> None:
    page = await make_page(owner)
    a = await make_target(owner, "a")
    b = await make_target(owner, "b")
    comp = await add_component(owner, page["id"], a, public_name="API", public_group="Core")
    assert comp["display_name"] == "API" and comp["sort_order"] == 0
    comp_b = await add_component(owner, page["id"], b)
    assert comp_b["display_name"] == "b" and comp_b["sort_order"] == 1

    err = assert_error(
        await owner.post(f"{PAGES}/{page['id']}/components", json={"target_id": a}),
        409,
        "COMPONENT_ALREADY_ON_PAGE",
    )
    assert "PATCH" in err["message"]

    resp = await owner.patch(
        f"{PAGES}/{page['id']}/components/{a}",
        json={"public_name": None, "public_description": "The API"},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["public_name"] is None and body["display_name"] == "a"
    assert body["public_group"] == "Core" and body["public_description"] == "The API"

    resp = await owner.post(f"{PAGES}/{page['id']}/components/reorder", json={"target_ids": [b, a]})
    assert resp.status_code == 200, resp.text
    assert [c["target_id"] for c in resp.json()["items"]] == [b, a]
    assert_error(
        await owner.post(f"{PAGES}/{page['id']}/components/reorder", json={"target_ids": [b]}),
        400,
        "INVALID_COMPONENT_ORDER",
    )
    assert_error(
        await owner.post(f"{PAGES}/{page['id']}/components/reorder", json={"target_ids": ["x"]}),
        400,
        "INVALID_TARGET_ID",
    )

    assert (await owner.delete(f"{PAGES}/{page['id']}/components/{a}")).status_code == 204
    assert_error(
        await owner.delete(f"{PAGES}/{page['id']}/components/{a}"), 404, "COMPONENT_NOT_FOUND"
    )
    items = (await owner.get(f"{PAGES}/{page['id']}/components")).json()["items"]
    assert [c["target_id"] for c in items] == [b]
    assert (await owner.get(f"{PAGES}/{page['id']}")).json()["component_count"] == 1


async def test_component_bad_input(owner: Persona) -> None:
    page = await make_page(owner)
    a = await make_target(owner, "a")
    url = f"{PAGES}/{page['id']}/components"
    assert_error(await owner.post(url, json={"target_id": "nope"}), 400, "INVALID_TARGET_ID")
    assert_error(
        await owner.post(url, json={"target_id": str(uuid.uuid4())}), 422, "UNKNOWN_TARGET"
    )
    assert_error(
        await owner.post(url, json={"target_id": a, "public_name": ""}),
        400,
        "INVALID_PUBLIC_NAME",
    )
    assert_error(
        await owner.post(url, json={"target_id": a, "public_group": "g" * 101}),
        400,
        "INVALID_PUBLIC_GROUP",
    )
    assert_error(
        await owner.patch(f"{url}/{a}", json={"public_name": "x"}), 404, "COMPONENT_NOT_FOUND"
    )


async def test_component_cap_counts_distinct_targets(owner: Persona, db_url: str) -> None:
    await set_plan_limit(db_url, owner.org_id, "max_public_components", 1)
    p1 = await make_page(owner, "p1")
    p2 = await make_page(owner, "p2")
    a = await make_target(owner, "a")
    b = await make_target(owner, "b")
    await add_component(owner, p1["id"], a)
    await add_component(owner, p2["id"], a)  # the same monitor: still one
    err = assert_error(
        await owner.post(f"{PAGES}/{p1['id']}/components", json={"target_id": b}),
        422,
        "QUOTA_EXCEEDED",
    )
    assert err["details"]["quota"] == "max_public_components"


async def test_cross_org_is_404(owner: Persona, outsider: Persona) -> None:
    page = await make_page(owner)
    a = await make_target(owner, "a")
    await add_component(owner, page["id"], a)
    theirs = await make_target(outsider, "theirs")
    pid = page["id"]
    assert_error(await outsider.get(f"{PAGES}/{pid}"), 404, "STATUS_PAGE_NOT_FOUND")
    assert_error(await outsider.patch(f"{PAGES}/{pid}", json={}), 404, "STATUS_PAGE_NOT_FOUND")
    assert_error(await outsider.delete(f"{PAGES}/{pid}"), 404, "STATUS_PAGE_NOT_FOUND")
    assert_error(await outsider.get(f"{PAGES}/{pid}/components"), 404, "STATUS_PAGE_NOT_FOUND")
    assert_error(
        await outsider.post(f"{PAGES}/{pid}/components", json={"target_id": a}),
        404,
        "STATUS_PAGE_NOT_FOUND",
    )
    assert_error(
        await outsider.patch(f"{PAGES}/{pid}/components/{a}", json={}),
        404,
        "STATUS_PAGE_NOT_FOUND",
    )
    assert_error(
        await outsider.delete(f"{PAGES}/{pid}/components/{a}"), 404, "STATUS_PAGE_NOT_FOUND"
    )
    assert_error(
        await outsider.post(f"{PAGES}/{pid}/logo", files={"file": ("l.png", PNG, "image/png")}),
        404,
        "STATUS_PAGE_NOT_FOUND",
    )
    # Their own page cannot take our monitor.
    mine = await make_page(outsider, "mine")
    assert_error(
        await outsider.post(f"{PAGES}/{mine['id']}/components", json={"target_id": a}),
        422,
        "UNKNOWN_TARGET",
    )
    assert_error(
        await owner.post(f"{PAGES}/{pid}/components", json={"target_id": theirs}),
        422,
        "UNKNOWN_TARGET",
    )
    assert (await outsider.get(PAGES)).json()["total"] == 1


async def test_logo_upload_and_serve(owner: Persona, anon: Persona) -> None:
    page = await make_page(owner, "logo")
    url = f"{PAGES}/{page['id']}/logo"
    resp = await owner.post(url, files={"file": ("logo.png", PNG, "application/octet-stream")})
    assert resp.status_code == 200, resp.text
    logo_url = resp.json()["logo_url"]
    assert logo_url and "/api/public/v1/pages/logo/logo" in logo_url
    served = await anon.get("/" + logo_url.split("://", 1)[1].split("/", 1)[1])
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.content == PNG

    assert_error(
        await owner.post(url, files={"file": ("x.svg", b"<svg/>", "image/svg+xml")}),
        422,
        "UNSUPPORTED_LOGO_TYPE",
    )
    assert_error(
        await owner.post(url, files={"file": ("x.png", PNG + b"\x00" * 300_000, "image/png")}),
        413,
        "LOGO_TOO_LARGE",
    )
    assert_error(
        await owner.post(url, files={"other": ("x.png", PNG, "image/png")}), 400, "MISSING_FIELD"
    )
    assert_error(await owner.post(url, json={"file": "x"}), 415, "UNSUPPORTED_MEDIA_TYPE")

    assert (await owner.delete(url)).status_code == 204
    assert (await owner.get(f"{PAGES}/{page['id']}")).json()["logo_url"] is None
    assert (await anon.get("/api/public/v1/pages/logo/logo")).status_code == 404
