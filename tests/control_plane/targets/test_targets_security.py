"""Targets security: 401 on every route, another org's target is 404, credentials sealed at rest
and redacted on every read."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from control_plane.domain.targets.codec import open_check
from control_plane.security.sealing import Sealer, SecretUnavailable
from tests.conftest import Persona, assert_error
from tests.control_plane.targets.test_targets_crud import (
    create,
    http_target,
    stored_row,
    tcp_target,
)

API = "/api/v1/targets"
PASSWORD = "pw-7c1f0e-not-in-the-db"
TOKEN = "tok-51aa09-not-in-the-db"

# Every target route: (method, path with {id}, body).
ROUTES: list[tuple[str, str, Any]] = [
    ("POST", API, tcp_target()),
    ("GET", API, None),
    ("GET", API + "/{id}", None),
    ("PATCH", API + "/{id}", {"name": "x"}),
    ("DELETE", API + "/{id}", None),
    ("GET", API + "/{id}/regions", None),
    ("PUT", API + "/{id}/regions", {"regions": ["default"]}),
]
ROUTE_IDS = [f"{m} {p}" for m, p, _ in ROUTES]
TARGET_ROUTES = [r for r in ROUTES if "{id}" in r[1]]
TARGET_ROUTE_IDS = [f"{m} {p}" for m, p, _ in TARGET_ROUTES]


def auth_variants() -> list[Any]:
    return [
        pytest.param({}, id="no header"),
        pytest.param({"Authorization": ""}, id="empty"),
        pytest.param({"Authorization": "Bearer"}, id="scheme only"),
        pytest.param({"Authorization": "Bearer vgl_not-a-real-token-at-all-000000"}, id="unknown"),
        pytest.param({"Authorization": "Bearer short"}, id="malformed"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="basic"),
        pytest.param({"Authorization": "Bearer sm_agent_abcdefgh0123456789abcdef"}, id="agent"),
        pytest.param({"Authorization": "Bearer operator-secret-for-tests"}, id="operator"),
    ]


@pytest.mark.parametrize("headers", auth_variants())
@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
async def test_every_route_is_401_without_a_valid_token(
    owner: Persona, anon: Persona, method: str, path: str, body: Any, headers: dict[str, str]
) -> None:
    target = await create(owner, tcp_target("victim"))
    kw = {"json": body} if body is not None else {}
    resp = await anon.request(method, path.format(id=target["id"]), headers=headers, **kw)
    assert_error(resp, 401, "UNAUTHORIZED")
    assert resp.headers["www-authenticate"] == "Bearer"
    assert "cache-control" in resp.headers
    # Nothing happened to the owner's target.
    assert (await owner.get(f"{API}/{target['id']}")).json() == target


@pytest.mark.parametrize(("method", "path", "_body"), ROUTES, ids=ROUTE_IDS)
async def test_authentication_comes_before_the_body(
    owner: Persona, anon: Persona, method: str, path: str, _body: Any
) -> None:
    target = await create(owner, tcp_target())
    resp = await anon.request(
        method,
        path.format(id=target["id"]),
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert_error(resp, 401, "UNAUTHORIZED")


async def test_a_revoked_token_is_401(owner: Persona, db_url: str) -> None:
    assert (await owner.get(API)).status_code == 200
    # Revoked the supported way (the API; `vigil token revoke` likewise), which also tells
    # every API process that remembers the key (core/keycache.py).
    (key,) = (await owner.get("/api/v1/api-keys")).json()["items"]
    assert (await owner.delete(f"/api/v1/api-keys/{key['id']}")).status_code == 204
    assert_error(await owner.get(API), 401, "UNAUTHORIZED")


@pytest.mark.parametrize(("method", "path", "body"), TARGET_ROUTES, ids=TARGET_ROUTE_IDS)
async def test_another_orgs_target_is_404(
    owner: Persona, outsider: Persona, method: str, path: str, body: Any
) -> None:
    target = await create(owner, http_target("secret-api", bearer_token=TOKEN))
    kw = {"json": body} if body is not None else {}
    resp = await outsider.request(method, path.format(id=target["id"]), **kw)
    err = assert_error(resp, 404, "TARGET_NOT_FOUND")
    assert err == (
        assert_error(
            await outsider.request(method, path.format(id=uuid.uuid4()), **kw),
            404,
            "TARGET_NOT_FOUND",
        )
        | {"trace_id": err["trace_id"]}
    ), "a foreign id must look exactly like a missing one"
    assert (await owner.get(f"{API}/{target['id']}")).json() == target


async def test_lists_show_only_the_callers_targets(owner: Persona, outsider: Persona) -> None:
    mine = await create(owner, {**tcp_target("shared-name"), "tags": ["prod"]})
    theirs = await create(outsider, {**tcp_target("shared-name"), "tags": ["prod"]})
    for persona, own in ((owner, mine), (outsider, theirs)):
        for params in ({}, {"tag": "prod"}, {"q": "shared"}, {"enabled": "true"}):
            page = (await persona.get(API, params=params)).json()
            assert [t["id"] for t in page["items"]] == [own["id"]]
            assert page["total"] == 1


async def test_alerts_cannot_bind_another_orgs_channel(
    owner: Persona, outsider: Persona, db_url: str
) -> None:
    from tests.control_plane.targets.test_targets_crud import add_channel

    theirs = await add_channel(db_url, outsider.org_id, "their-pager")
    assert_error(
        await owner.post(API, json={**tcp_target(), "alerts": [{"channel_id": theirs}]}),
        400,
        "INVALID_ALERT_CONFIG",
        "/alerts/0/channel_id",
    )


# -- sealing at rest -----------------------------------------------------------------------------


async def test_credentials_are_not_stored_in_plaintext(owner: Persona, db_url: str) -> None:
    basic = await create(owner, http_target("basic", basic_auth=["alice", PASSWORD]))
    bearer = await create(owner, http_target("bearer", bearer_token=TOKEN))
    for created, field in ((basic, "basic_auth"), (bearer, "bearer_token")):
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            row = await (
                await conn.execute(
                    "SELECT spec::text, secrets::text, row_to_json(t)::text FROM targets t"
                    " WHERE id = %s",
                    (created["id"],),
                )
            ).fetchone()
            assert row is not None
            dump = await (
                await conn.execute(
                    "SELECT string_agg(row_to_json(x)::text, '')"
                    " FROM (SELECT * FROM target_details) x"
                )
            ).fetchone()
        spec_text, secrets_text, row_text = row
        for text in (spec_text, secrets_text, row_text, dump[0] if dump else ""):
            assert PASSWORD not in text
            assert TOKEN not in text
        stored = await stored_row(db_url, created["id"])
        assert "basic_auth" not in stored["spec"] and "bearer_token" not in stored["spec"]
        assert set(stored["secrets"]) == {field}
        for sealed in stored["secrets"].values():
            assert sealed.startswith("v1:k1:")


async def test_sealed_credentials_open_only_for_their_own_target(
    owner: Persona, db_url: str, settings: Any
) -> None:
    sealer = Sealer(settings.security.sealing_keys, settings.security.primary_key_id)
    a = await stored_row(db_url, (await create(owner, http_target(bearer_token=TOKEN)))["id"])
    b = await stored_row(
        db_url, (await create(owner, http_target("b", bearer_token="other")))["id"]
    )
    spec = open_check(sealer, owner.org_id, a["id"], a["spec"], a["secrets"])
    assert getattr(spec, "bearer_token", None) == TOKEN
    # The sealed value is bound to its org, target and field: moved elsewhere it does not open.
    with pytest.raises(SecretUnavailable):
        open_check(sealer, owner.org_id, b["id"], b["spec"], a["secrets"])
    with pytest.raises(SecretUnavailable):
        open_check(sealer, uuid.uuid4(), a["id"], a["spec"], a["secrets"])
    with pytest.raises(SecretUnavailable):
        open_check(
            sealer, owner.org_id, a["id"], a["spec"], {"basic_auth": a["secrets"]["bearer_token"]}
        )


# -- redaction on every read ---------------------------------------------------------------------


async def test_every_read_redacts_credentials_and_keeps_null(owner: Persona) -> None:
    bearer = http_target("bearer", bearer_token=TOKEN)
    basic_only = http_target("basic", basic_auth=["alice", PASSWORD])
    none = http_target("none")
    responses = []
    ids = {}
    for body in (bearer, basic_only, none):
        resp = await owner.post(API, json=body)
        assert resp.status_code == 201
        responses.append(resp)
        ids[body["name"]] = resp.json()["id"]
    for tid in ids.values():
        responses.append(await owner.get(f"{API}/{tid}"))
        responses.append(await owner.patch(f"{API}/{tid}", json={"tags": ["t"]}))
    list_resp = await owner.get(API)
    responses.append(list_resp)
    for resp in responses:
        assert PASSWORD not in resp.text and TOKEN not in resp.text

    by_name = {t["name"]: t["check"] for t in list_resp.json()["items"]}
    assert (by_name["bearer"]["basic_auth"], by_name["bearer"]["bearer_token"]) == (None, "***")
    assert (by_name["basic"]["basic_auth"], by_name["basic"]["bearer_token"]) == ("***", None)
    assert (by_name["none"]["basic_auth"], by_name["none"]["bearer_token"]) == (None, None)
    for name, tid in ids.items():
        check = (await owner.get(f"{API}/{tid}")).json()["check"]
        assert check == by_name[name]


async def test_patching_the_check_with_new_credentials_never_echoes_them(owner: Persona) -> None:
    created = await create(owner, http_target())
    resp = await owner.patch(
        f"{API}/{created['id']}",
        json={"check": {**created["check"], "basic_auth": ["bob", PASSWORD]}},
    )
    assert resp.status_code == 200, resp.text
    assert PASSWORD not in resp.text
    assert resp.json()["check"]["basic_auth"] == "***"
