"""The operator's abuse deny-list on target create, update and test; core/abuse.check_url."""

from __future__ import annotations

import psycopg

from control_plane.core.abuse import check_url
from control_plane.core.errors import ApiError
from tests.conftest import Persona, assert_error


def http(url: str) -> dict[str, object]:
    return {"name": "x", "check": {"type": "http", "url": url}}


async def test_denylist_applies_to_create_update_and_test(
    operator: Persona, owner: Persona
) -> None:
    resp = await operator.post(
        "/operator/abuse/denylist",
        json={"kind": "domain", "value": "Evil.Example.", "reason": "phishing"},
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["value"] == "evil.example"
    resp = await operator.post(
        "/operator/abuse/denylist",
        json={"kind": "url_pattern", "value": r"/wp-admin|\.env$", "reason": "recon"},
    )
    assert resp.status_code == 201, resp.text
    for url in ("https://evil.example/", "https://a.b.EVIL.example/x"):
        err = assert_error(
            await owner.post("/api/v1/targets", json=http(url)), 400, "DOMAIN_DENYLISTED"
        )
        assert err["details"] == {"domain": "evil.example", "reason": "phishing"}
        assert err["field"] == "/check/url"
    err = assert_error(
        await owner.post("/api/v1/targets", json=http("https://ok.example/WP-Admin")),
        400,
        "URL_PATTERN_BLOCKED",
    )
    assert err["details"]["reason"] == "recon"
    resp = await owner.post(
        "/api/v1/targets",
        json={"name": "t", "check": {"type": "tcp", "host": "x.evil.example", "port": 22}},
    )
    assert_error(resp, 400, "DOMAIN_DENYLISTED")
    # Not a suffix of a label: notevil.example is fine.
    created = await owner.post("/api/v1/targets", json=http("https://notevil.example/"))
    assert created.status_code == 201, created.text
    tid = created.json()["id"]
    resp = await owner.patch(
        f"/api/v1/targets/{tid}", json={"check": {"type": "http", "url": "https://evil.example"}}
    )
    assert_error(resp, 400, "DOMAIN_DENYLISTED")
    resp = await owner.post(
        "/api/v1/targets/test",
        json={"check": {"type": "http", "url": "https://evil.example"}, "region": "default"},
    )
    assert_error(resp, 400, "DOMAIN_DENYLISTED")


async def test_operator_denylist_crud_and_bad_input(operator: Persona, owner: Persona) -> None:
    entry = (
        await operator.post(
            "/operator/abuse/denylist", json={"kind": "domain", "value": "bad.example"}
        )
    ).json()
    resp = await operator.post(
        "/operator/abuse/denylist", json={"kind": "domain", "value": "bad.example"}
    )
    assert_error(resp, 409, "DENYLIST_ENTRY_EXISTS")
    for body, code in (
        ({"kind": "domain", "value": "https://x.example/"}, "INVALID_DOMAIN"),
        ({"kind": "url_pattern", "value": "(unclosed"}, "INVALID_PATTERN"),
    ):
        assert_error(await operator.post("/operator/abuse/denylist", json=body), 400, code)
    assert (
        await operator.post("/operator/abuse/denylist", json={"kind": "ip", "value": "x"})
    ).status_code == 400
    listed = (await operator.get("/operator/abuse/denylist")).json()
    assert [e["id"] for e in listed["items"]] == [entry["id"]]
    assert (await owner.get("/operator/abuse/denylist")).status_code == 401
    assert (await operator.delete(f"/operator/abuse/denylist/{entry['id']}")).status_code == 204
    resp = await operator.delete(f"/operator/abuse/denylist/{entry['id']}")
    assert_error(resp, 404, "DENYLIST_ENTRY_NOT_FOUND")
    assert (
        await owner.post("/api/v1/targets", json=http("https://bad.example"))
    ).status_code == 201


async def test_check_url_for_other_slices(operator: Persona, db_url: str) -> None:
    await operator.post(
        "/operator/abuse/denylist", json={"kind": "domain", "value": "hooks.evil.example"}
    )
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await check_url(conn, "https://hooks.example.com/x")
        try:
            await check_url(conn, "https://HOOKS.evil.example:8443/webhook", "/config/url")
        except ApiError as exc:
            assert exc.code == "DOMAIN_DENYLISTED" and exc.field == "/config/url"
        else:
            raise AssertionError("not refused")


async def test_denylist_applies_to_channel_urls(operator: Persona, owner: Persona) -> None:
    base = "/api/v1/notification-channels"
    resp = await operator.post(
        "/operator/abuse/denylist", json={"kind": "domain", "value": "evil.example"}
    )
    assert resp.status_code == 201, resp.text
    bad = {"type": "webhook", "url": "https://hooks.evil.example/x"}
    err = assert_error(
        await owner.post(base, json={"name": "hook", "config": bad}), 400, "DOMAIN_DENYLISTED"
    )
    assert err["field"] == "/config/url"
    assert_error(await owner.post(f"{base}/test", json={"config": bad}), 400, "DOMAIN_DENYLISTED")
    good = {"type": "webhook", "url": "https://hooks.example.com/x"}
    created = await owner.post(base, json={"name": "hook", "config": good})
    assert created.status_code == 201, created.text
    resp = await owner.patch(f"{base}/{created.json()['id']}", json={"config": bad})
    assert_error(resp, 400, "DOMAIN_DENYLISTED")
    stored = (await owner.get(f"{base}/{created.json()['id']}")).json()
    assert stored["config"]["type"] == "webhook"  # the refused PATCH changed nothing
    assert stored["updated_at"] == created.json()["updated_at"]


async def test_denylist_applies_to_every_item_of_a_bulk_create(
    operator: Persona, owner: Persona
) -> None:
    resp = await operator.post(
        "/operator/abuse/denylist", json={"kind": "domain", "value": "evil.example"}
    )
    assert resp.status_code == 201, resp.text
    items = [
        http("https://ok.example/"),
        http("https://x.evil.example/"),
        http("https://b.example"),
    ]
    err = assert_error(
        await owner.post("/api/v1/targets/bulk", json={"targets": items}),
        400,
        "BULK_VALIDATION_FAILED",
    )
    (bad,) = err["details"]["errors"]
    assert bad["index"] == 1 and bad["code"] == "DOMAIN_DENYLISTED"
    assert (await owner.get("/api/v1/targets")).json()["total"] == 0
