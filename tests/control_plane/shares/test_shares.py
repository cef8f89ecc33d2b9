"""/api/v1/targets/{id}/shares and the page a link opens, /m/{token}."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree as ET

import psycopg

from control_plane.domain.orgs.service import create_token
from tests.conftest import Persona, assert_error
from tests.control_plane.public import seed
from tests.control_plane.status_pages.helpers import (
    SECRETS,
    make_secret_target,
    make_target,
    set_plan_limit,
    sql,
)
from tests.stack import TOKEN_KEY


def shares(target_id: str) -> str:
    return f"/api/v1/targets/{target_id}/shares"


async def test_mint_list_revoke_and_open(owner: Persona, anon: Persona, db_url: str) -> None:
    tid = await make_secret_target(owner, "checkout")
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for h in range(1, 5):
        await seed.hourly(db_url, owner.org_id, tid, now - timedelta(hours=h), up=60, p50=20.0 * h)
    await seed.incident(db_url, owner.org_id, tid, title="Checkout down")
    resp = await owner.post(shares(tid), json={"label": "for the CEO"})
    assert resp.status_code == 201, resp.text
    share = resp.json()
    assert share["label"] == "for the CEO" and share["expires_at"] is None
    token = share["token"]
    assert token.startswith("vgs_") and share["share_url"].endswith(f"/m/{token}")

    listed = (await owner.get(shares(tid))).json()["items"]
    assert [s["token"] for s in listed] == [token]

    # At rest: sealed, never in the clear; matched by a separate hash.
    rows = await sql(db_url, "SELECT secrets::text, token_hash FROM monitor_shares")
    assert token not in rows[0][0] and rows[0][0].count("v1:") == 1

    page = await anon.get(f"/m/{token}")
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert "checkout" in html and "Major outage" in html and "Checkout down" in html
    for s in SECRETS:
        assert s not in html
    start = html.index("<svg")
    svg = html[start : html.index("</svg>", start) + 6]
    root = ET.fromstring(svg)
    lines = root.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 2 and len(lines[0].attrib["points"].split()) == 4

    assert (await owner.delete(f"{shares(tid)}/{share['id']}")).status_code == 204
    assert (await anon.get(f"/m/{token}")).status_code == 404
    assert (await owner.get(shares(tid))).json()["items"] == []
    assert_error(await owner.delete(f"{shares(tid)}/{share['id']}"), 404, "SHARE_NOT_FOUND")


async def test_expired_link_is_404(owner: Persona, anon: Persona, db_url: str) -> None:
    tid = await make_target(owner, "api")
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    share = (await owner.post(shares(tid), json={"expires_at": soon})).json()
    assert (await anon.get(f"/m/{share['token']}")).status_code == 200
    await sql(db_url, "UPDATE monitor_shares SET expires_at = now() - interval '1 second'")
    assert (await anon.get(f"/m/{share['token']}")).status_code == 404
    assert (await anon.get("/m/vgs_nonsense")).status_code == 404
    assert (await anon.get("/m/whatever")).status_code == 404


async def test_bad_input(owner: Persona) -> None:
    tid = await make_target(owner, "api")
    assert_error(
        await owner.post(shares(tid), json={"label": "x" * 81}),
        400,
        "SHARE_LABEL_INVALID",
        "/label",
    )
    assert_error(await owner.post(shares(tid), json={"label": 5}), 400, "SHARE_LABEL_INVALID")
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert_error(
        await owner.post(shares(tid), json={"expires_at": past}),
        400,
        "INVALID_EXPIRY",
        "/expires_at",
    )
    assert_error(await owner.post(shares(tid), json={"expires_at": "soon"}), 400, "INVALID_EXPIRY")
    assert_error(await owner.post(shares(tid), json={"nope": 1}), 400, "UNKNOWN_FIELD")
    assert_error(await owner.post(shares("nope"), json={}), 404, "TARGET_NOT_FOUND")
    assert_error(await owner.delete(f"{shares(tid)}/nope"), 404, "SHARE_NOT_FOUND")


async def test_caps_name_the_quota(owner: Persona, db_url: str) -> None:
    await set_plan_limit(db_url, owner.org_id, "max_share_links_per_monitor", 1)
    await set_plan_limit(db_url, owner.org_id, "max_shared_monitors", 2)
    a, b, c = [await make_target(owner, n) for n in "abc"]
    assert (await owner.post(shares(a), json={})).status_code == 201
    err = assert_error(await owner.post(shares(a), json={}), 422, "QUOTA_EXCEEDED")
    assert err["details"]["quota"] == "max_share_links_per_monitor"
    assert (await owner.post(shares(b), json={})).status_code == 201
    err = assert_error(await owner.post(shares(c), json={}), 422, "QUOTA_EXCEEDED")
    assert err["details"]["quota"] == "max_shared_monitors"


async def test_cross_org_is_404(owner: Persona, outsider: Persona) -> None:
    tid = await make_target(owner, "api")
    share = (await owner.post(shares(tid), json={})).json()
    assert_error(await outsider.post(shares(tid), json={}), 404, "TARGET_NOT_FOUND")
    assert_error(await outsider.get(shares(tid)), 404, "TARGET_NOT_FOUND")
    assert_error(await outsider.delete(f"{shares(tid)}/{share['id']}"), 404, "TARGET_NOT_FOUND")
    theirs = await make_target(outsider, "theirs")
    assert_error(await outsider.delete(f"{shares(theirs)}/{share['id']}"), 404, "SHARE_NOT_FOUND")


async def test_read_only_callers_see_links_without_tokens(owner: Persona, db_url: str) -> None:
    tid = await make_target(owner, "api")
    made = (await owner.post(shares(tid), json={"label": "status"})).json()
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        key = await create_token(
            conn, TOKEN_KEY, owner.org_id, "ro", permissions=frozenset({"targets:read"})
        )
    ro = Persona(owner.client, {"Authorization": f"Bearer {key.token}"}, owner.org_id)
    resp = await ro.get(shares(tid))
    assert resp.status_code == 200, resp.text
    (item,) = resp.json()["items"]
    assert item["id"] == made["id"] and item["label"] == "status"
    assert item["token"] is None and item["share_url"] is None
    assert made["token"] not in resp.text
    (full,) = (await owner.get(shares(tid))).json()["items"]
    assert full["token"] == made["token"]
    err = assert_error(await ro.post(shares(tid), json={}), 403, "FORBIDDEN")
    assert err["details"]["permission"] == "targets:write"


async def test_keys_rotate_rewraps_share_tokens(owner: Persona, anon: Persona, db_url: str) -> None:
    from control_plane.security.rotation import rotate_keys
    from control_plane.security.sealing import Sealer
    from tests.stack import SEALING_KEYS

    tid = await make_target(owner, "api")
    share = (await owner.post(shares(tid), json={})).json()
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        report = await rotate_keys(conn, Sealer(SEALING_KEYS, "k2"))
    by_name = {c.column: c for c in report.columns}
    assert by_name["monitor_shares.secrets"].rewrapped == 1
    rows = await sql(db_url, "SELECT secrets->>'token' FROM monitor_shares")
    assert rows[0][0].startswith("v1:k2:")
    # Still re-copyable under the new key, and the link still opens (matched by hash).
    opened = Sealer({"k2": SEALING_KEYS["k2"]}, "k2").open(
        rows[0][0], Sealer.binding(owner.org_id, share["id"], "token")
    )
    assert opened == share["token"]
    assert (await anon.get(f"/m/{share['token']}")).status_code == 200
