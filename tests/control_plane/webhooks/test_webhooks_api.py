"""/api/v1/webhooks: CRUD, the sealed secret, bad input with stable codes, the deny-list, and
another org's subscription always 404."""

from __future__ import annotations

import psycopg

from tests.conftest import Persona, assert_error

URL = "https://hooks.example.com/vigil"
SECRET = "s3cret-s3cret-s3cret"


async def test_crud_secret_sealed_and_read_back_masked(owner: Persona, db_url: str) -> None:
    resp = await owner.post(
        "/api/v1/webhooks",
        json={"url": URL, "events": ["monitor.down", "monitor.up"], "secret": SECRET},
    )
    assert resp.status_code == 201, resp.text
    hook = resp.json()
    assert resp.headers["location"] == f"/api/v1/webhooks/{hook['id']}"
    assert hook["secret"] == "***" and hook["enabled"] is True
    assert hook["write_source"] == "api" and hook["events"] == ["monitor.down", "monitor.up"]
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        stored = await (
            await conn.execute("SELECT secret FROM webhooks WHERE id = %s", (hook["id"],))
        ).fetchone()
    assert stored is not None and SECRET not in str(stored[0])

    listed = (await owner.get("/api/v1/webhooks")).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == hook["id"]
    got = (await owner.get(f"/api/v1/webhooks/{hook['id']}")).json()
    assert got == hook

    # A read sent back as is: "***" is refused (the reference's redaction-sentinel guard) and
    # nothing changes; omitting the secret keeps it while other fields change.
    resp = await owner.patch(
        f"/api/v1/webhooks/{hook['id']}",
        json={"secret": "***", "events": ["incident.opened"], "enabled": False},
    )
    assert_error(resp, 400, "REDACTION_SENTINEL", "/secret")
    assert (await owner.get(f"/api/v1/webhooks/{hook['id']}")).json() == hook
    resp = await owner.patch(
        f"/api/v1/webhooks/{hook['id']}", json={"events": ["incident.opened"], "enabled": False}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["secret"] == "***" and resp.json()["enabled"] is False
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        again = await (
            await conn.execute("SELECT secret FROM webhooks WHERE id = %s", (hook["id"],))
        ).fetchone()
    assert again == stored
    # null removes it.
    resp = await owner.patch(f"/api/v1/webhooks/{hook['id']}", json={"secret": None})
    assert resp.json()["secret"] is None
    assert (await owner.delete(f"/api/v1/webhooks/{hook['id']}")).status_code == 204
    assert_error(await owner.get(f"/api/v1/webhooks/{hook['id']}"), 404, "WEBHOOK_NOT_FOUND")


async def test_bad_input(owner: Persona) -> None:
    base = {"url": URL, "events": ["monitor.down"]}
    cases = [
        ({**base, "events": ["monitor.exploded"]}, "UNKNOWN_EVENT", "/events/0"),
        ({**base, "events": ["monitor.up", "run.completed"]}, "UNKNOWN_EVENT", "/events/1"),
        ({**base, "events": []}, "UNKNOWN_EVENT", "/events"),
        ({**base, "events": "monitor.down"}, "UNKNOWN_EVENT", None),
        ({**base, "url": "ftp://hooks.example.com/"}, "INVALID_WEBHOOK_URL", "/url"),
        ({**base, "url": "not a url"}, "INVALID_WEBHOOK_URL", "/url"),
        ({**base, "secret": "short"}, "INVALID_WEBHOOK_SECRET", "/secret"),
        ({**base, "secret": "***"}, "REDACTION_SENTINEL", "/secret"),
        ({"events": ["monitor.down"]}, None, None),
        ({**base, "extra": 1}, None, None),
    ]
    for body, code, pointer in cases:
        resp = await owner.post("/api/v1/webhooks", json=body)
        assert resp.status_code == 400, (body, resp.text)
        if code:
            assert resp.json()["error"]["code"] == code, (body, resp.text)
        if pointer:
            assert resp.json()["error"]["field"] == pointer, (body, resp.text)
    hook = (await owner.post("/api/v1/webhooks", json=base)).json()
    resp = await owner.patch(f"/api/v1/webhooks/{hook['id']}", json={"events": ["nope"]})
    assert_error(resp, 400, "UNKNOWN_EVENT")
    # "***" when no secret is stored: refused all the same.
    resp = await owner.patch(f"/api/v1/webhooks/{hook['id']}", json={"secret": "***"})
    assert_error(resp, 400, "REDACTION_SENTINEL")
    assert_error(await owner.get("/api/v1/webhooks/not-a-uuid"), 404, "WEBHOOK_NOT_FOUND")


async def test_other_org_is_404_on_every_route(owner: Persona, outsider: Persona) -> None:
    hook = (
        await owner.post("/api/v1/webhooks", json={"url": URL, "events": ["monitor.down"]})
    ).json()
    path = f"/api/v1/webhooks/{hook['id']}"
    assert_error(await outsider.get(path), 404, "WEBHOOK_NOT_FOUND")
    assert_error(await outsider.patch(path, json={"enabled": False}), 404, "WEBHOOK_NOT_FOUND")
    assert_error(await outsider.post(f"{path}/test"), 404, "WEBHOOK_NOT_FOUND")
    assert_error(await outsider.get(f"{path}/deliveries"), 404, "WEBHOOK_NOT_FOUND")
    assert_error(await outsider.delete(path), 404, "WEBHOOK_NOT_FOUND")
    assert (await outsider.get("/api/v1/webhooks")).json()["total"] == 0
    assert (await owner.get(path)).status_code == 200


async def test_denylisted_url_refused(operator: Persona, owner: Persona) -> None:
    resp = await operator.post(
        "/operator/abuse/denylist", json={"kind": "domain", "value": "evil.example"}
    )
    assert resp.status_code == 201, resp.text
    body = {"url": "https://hooks.evil.example/x", "events": ["monitor.down"]}
    assert_error(await owner.post("/api/v1/webhooks", json=body), 400, "DOMAIN_DENYLISTED")
    hook = (
        await owner.post("/api/v1/webhooks", json={"url": URL, "events": ["monitor.down"]})
    ).json()
    resp = await owner.patch(f"/api/v1/webhooks/{hook['id']}", json={"url": body["url"]})
    assert_error(resp, 400, "DOMAIN_DENYLISTED")
