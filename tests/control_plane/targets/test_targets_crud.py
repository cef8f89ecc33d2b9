"""/api/v1/targets CRUD and /regions as the primary reference describes them.

Defaults filled in on read, 201 + Location, UUIDv7 ids, the pagination envelope and its filters,
PATCH partial semantics, DELETE, write_source and Cache-Control.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg
import pytest

from control_plane.domain.targets.codec import open_check
from control_plane.security.sealing import Sealer
from shared.checks import HttpCheck
from tests.conftest import Persona, assert_error
from tests.stack import SEALING_KEYS

API = "/api/v1/targets"


def http_target(name: str = "api", **check: Any) -> dict[str, Any]:
    return {"name": name, "check": {"type": "http", "url": "https://example.com/healthz", **check}}


def tcp_target(name: str = "db", **check: Any) -> dict[str, Any]:
    return {"name": name, "check": {"type": "tcp", "host": "db.example.com", "port": 5432, **check}}


async def create(persona: Persona, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    resp = await persona.post(API, json=body, **kw)
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    return created


async def add_region(db_url: str, region_id: str, *, enabled: bool = True) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO regions (id, name, enabled) VALUES (%s, %s, %s)",
            (region_id, region_id.title(), enabled),
        )


async def add_channel(db_url: str, org_id: uuid.UUID, name: str) -> str:
    channel_id = uuid.uuid4()
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO channels (id, org_id, name, kind) VALUES (%s, %s, %s, 'webhook')",
            (channel_id, org_id, name),
        )
    return str(channel_id)


async def stored_row(db_url: str, target_id: str) -> dict[str, Any]:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        await cur.execute("SELECT * FROM targets WHERE id = %s", (target_id,))
        row = await cur.fetchone()
    assert row is not None
    return row


# -- create and read -------------------------------------------------------------------------


async def test_create_returns_201_with_location_and_uuidv7_id(owner: Persona) -> None:
    resp = await owner.post(API, json=http_target())
    assert resp.status_code == 201, resp.text
    body = resp.json()
    target_id = uuid.UUID(body["id"])
    assert target_id.version == 7
    assert resp.headers["location"] == f"/api/v1/targets/{target_id}"
    follow = await owner.get(resp.headers["location"])
    assert follow.status_code == 200
    assert follow.json() == body


async def test_http_check_defaults_are_filled_in_on_read(owner: Persona) -> None:
    created = await create(owner, http_target())
    read = (await owner.get(f"{API}/{created['id']}")).json()
    assert read["check"] == {
        "type": "http",
        "url": "https://example.com/healthz",
        "method": "GET",
        "timeout": 5000,
        "follow_redirects": False,
        "max_redirects": 0,
        "expected_status": {"kind": "exact", "value": 200},
        "expected_body_contains": None,
        "headers": {},
        "body": None,
        "verify_tls": True,
        "basic_auth": None,
        "bearer_token": None,
        "secret_headers": [],
        "assertions": [],
    }


async def test_tcp_check_defaults_are_filled_in_on_read(owner: Persona) -> None:
    created = await create(owner, tcp_target())
    read = (await owner.get(f"{API}/{created['id']}")).json()
    assert read["check"] == {
        "type": "tcp",
        "host": "db.example.com",
        "port": 5432,
        "timeout": 2000,
    }


@pytest.mark.parametrize("body", [http_target(), tcp_target()], ids=["http", "tcp"])
async def test_target_defaults_are_filled_in_on_read(owner: Persona, body: dict[str, Any]) -> None:
    created = await create(owner, body)
    read = (await owner.get(f"{API}/{created['id']}")).json()
    assert set(read) == {
        "id",
        "name",
        "check",
        "interval",
        "enabled",
        "tags",
        "alerts",
        "alert_confirmations",
        "notify_recovery",
        "renotify_interval_secs",
        "region_policy",
        "regions",
        "created_at",
        "updated_at",
        "write_source",
        # The current state (issue 16): nothing reported yet.
        "status",
        "last_result",
        "last_24h",
        "incident",
    }
    assert read["status"] == "unknown" and read["last_result"] is None
    assert read["last_24h"] == {"checks": 0, "checks_up": 0, "uptime_pct": None}
    # interval defaults by kind: 60 s for http and tcp.
    assert read["interval"] == 60
    assert read["enabled"] is True
    assert read["tags"] == []
    assert read["alerts"] == []
    assert read["alert_confirmations"] == 2
    assert read["notify_recovery"] is True
    assert read["renotify_interval_secs"] == 3600
    assert read["region_policy"] == "majority"
    assert read["regions"] == ["default"]
    assert read["write_source"] == "api"
    created_at = datetime.fromisoformat(read["created_at"])
    assert created_at.tzinfo is not None
    assert read["updated_at"] == read["created_at"]


async def test_every_field_given_on_create_reads_back(owner: Persona, db_url: str) -> None:
    ch1 = await add_channel(db_url, owner.org_id, "ops")
    ch2 = await add_channel(db_url, owner.org_id, "pager")
    check = {
        "type": "http",
        "url": "http://example.com:8080/api?x=1",
        "method": "POST",
        "timeout": 2500,
        "follow_redirects": True,
        "max_redirects": 3,
        "expected_status": {"kind": "range", "value": {"min": 200, "max": 299}},
        "expected_body_contains": "ok",
        "headers": {"X-Probe": "vigil"},
        "body": '{"ping": true}',
        "verify_tls": False,
        "basic_auth": None,
        "bearer_token": None,
        "secret_headers": [],
        "assertions": [],
    }
    body = {
        "name": "  checkout  ",
        "check": check,
        "interval": 30,
        "enabled": False,
        "tags": ["prod", "tier1", "prod"],
        "alerts": [{"channel_id": ch2}, {"channel_id": ch1}],
        "alert_confirmations": 3,
        "notify_recovery": False,
        "renotify_interval_secs": 0,
        "region_policy": {"count": 1},
    }
    created = await create(owner, body)
    read = (await owner.get(f"{API}/{created['id']}")).json()
    assert read == created
    assert read["name"] == "checkout"
    assert read["check"] == check
    assert read["interval"] == 30
    assert read["enabled"] is False
    assert read["tags"] == ["prod", "tier1"]
    assert read["alerts"] == [{"channel_id": ch2}, {"channel_id": ch1}]
    assert read["alert_confirmations"] == 3
    assert read["notify_recovery"] is False
    assert read["renotify_interval_secs"] == 0
    assert read["region_policy"] == {"count": 1}


@pytest.mark.parametrize(
    "expected",
    [
        {"kind": "exact", "value": 204},
        {"kind": "range", "value": {"min": 200, "max": 399}},
        {"kind": "one_of", "value": [200, 204, 301]},
    ],
)
async def test_expected_status_variants_round_trip(
    owner: Persona, expected: dict[str, Any]
) -> None:
    created = await create(owner, http_target(expected_status=expected))
    assert created["check"]["expected_status"] == expected


@pytest.mark.parametrize("policy", ["any", "majority", "all", {"count": 1}])
async def test_region_policies_round_trip(owner: Persona, policy: Any) -> None:
    created = await create(owner, {**tcp_target(), "region_policy": policy})
    assert (await owner.get(f"{API}/{created['id']}")).json()["region_policy"] == policy


# -- list ---------------------------------------------------------------------------------------


async def test_list_returns_the_pagination_envelope_oldest_first(owner: Persona) -> None:
    ids = [(await create(owner, tcp_target(f"t{i}")))["id"] for i in range(5)]
    resp = await owner.get(API)
    assert resp.status_code == 200
    page = resp.json()
    assert set(page) == {"items", "total", "limit", "offset"}
    assert [t["id"] for t in page["items"]] == ids
    assert (page["total"], page["limit"], page["offset"]) == (5, 50, 0)

    page = (await owner.get(API, params={"limit": 2, "offset": 1})).json()
    assert [t["id"] for t in page["items"]] == ids[1:3]
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)

    page = (await owner.get(API, params={"offset": 10})).json()
    assert page["items"] == []
    assert page["total"] == 5


async def test_list_limit_defaults_to_50_and_is_silently_capped(owner: Persona) -> None:
    for i in range(51):
        await create(owner, tcp_target(f"t{i}"))
    page = (await owner.get(API)).json()
    assert (len(page["items"]), page["total"], page["limit"]) == (50, 51, 50)
    page = (await owner.get(API, params={"limit": 100_000})).json()
    assert (len(page["items"]), page["total"], page["limit"]) == (51, 51, 1000)


async def test_list_filters_by_tag_enabled_and_q(owner: Persona) -> None:
    web = await create(owner, {**http_target("Web Front"), "tags": ["prod", "web"]})
    db = await create(owner, {**tcp_target("primary"), "tags": ["prod"], "enabled": False})
    stg = await create(
        owner,
        {
            "name": "staging 100%_done",
            "check": {"type": "http", "url": "https://STAGING.example.org"},
            "tags": ["staging"],
        },
    )

    async def ids(**params: Any) -> tuple[list[str], int]:
        resp = await owner.get(API, params=params)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        return [t["id"] for t in page["items"]], page["total"]

    assert await ids(tag="prod") == ([web["id"], db["id"]], 2)
    assert await ids(tag="web") == ([web["id"]], 1)
    assert await ids(tag="nope") == ([], 0)
    assert await ids(enabled="true") == ([web["id"], stg["id"]], 2)
    assert await ids(enabled="false") == ([db["id"]], 1)
    # q: case-insensitive substring of the name, the URL or the TCP host.
    assert await ids(q="front") == ([web["id"]], 1)
    assert await ids(q="staging.EXAMPLE") == ([stg["id"]], 1)
    assert await ids(q="db.example") == ([db["id"]], 1)
    # LIKE wildcards in q are literal.
    assert await ids(q="100%_") == ([stg["id"]], 1)
    assert await ids(q="%") == ([stg["id"]], 1)
    assert await ids(q="_") == ([stg["id"]], 1)
    # Filters combine, and total counts matches only, ignoring limit.
    assert await ids(tag="prod", enabled="true") == ([web["id"]], 1)
    assert await ids(tag="prod", limit=1) == ([web["id"]], 2)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "/limit"),
        ({"limit": "-1"}, "/limit"),
        ({"limit": "ten"}, "/limit"),
        ({"limit": "1.5"}, "/limit"),
        ({"offset": "-1"}, "/offset"),
        ({"offset": "x"}, "/offset"),
        ({"offset": str(2**64)}, "/offset"),
        ({"enabled": "maybe"}, "/enabled"),
        ({"q": "a\x00b"}, "/q"),
        ({"tag": "a\x00b"}, "/tag"),
        ({"q": "x" * 201}, "/q"),
    ],
)
async def test_list_rejects_bad_query_params(
    owner: Persona, params: dict[str, str], field: str
) -> None:
    err = assert_error(await owner.get(API, params=params), 400, "INVALID_QUERY_PARAM", field)
    assert "ParamType" not in err["message"]


# -- PATCH ---------------------------------------------------------------------------------------


async def test_patch_changes_only_the_fields_given(owner: Persona, db_url: str) -> None:
    channel = await add_channel(db_url, owner.org_id, "ops")
    created = await create(
        owner,
        {
            **http_target(basic_auth=["alice", "pw"]),
            "tags": ["a"],
            "alerts": [{"channel_id": channel}],
        },
    )
    url = f"{API}/{created['id']}"
    changes: list[tuple[str, Any]] = [
        ("name", "renamed"),
        ("interval", 120),
        ("enabled", False),
        ("tags", ["b", "c"]),
        ("alerts", []),
        ("alert_confirmations", 5),
        ("notify_recovery", False),
        ("renotify_interval_secs", 600),
        ("region_policy", "all"),
    ]
    expected = dict(created)
    for field, value in changes:
        resp = await owner.patch(url, json={field: value})
        assert resp.status_code == 200, resp.text
        expected[field] = value
        if field == "enabled":
            expected["status"] = "paused"  # a disabled target reads as paused
        got = resp.json()
        for key in expected:
            if key != "updated_at":
                assert got[key] == expected[key], (field, key)
        assert got == (await owner.get(url)).json()
    final = (await owner.get(url)).json()
    assert final["created_at"] == created["created_at"]
    assert datetime.fromisoformat(final["updated_at"]) > datetime.fromisoformat(
        created["updated_at"]
    )


async def test_patch_with_empty_body_changes_nothing_but_updated_at(owner: Persona) -> None:
    created = await create(owner, tcp_target())
    resp = await owner.patch(f"{API}/{created['id']}", json={})
    assert resp.status_code == 200
    got = resp.json()
    assert {k: v for k, v in got.items() if k != "updated_at"} == {
        k: v for k, v in created.items() if k != "updated_at"
    }


async def test_patch_without_check_keeps_the_stored_credentials(
    owner: Persona, db_url: str
) -> None:
    created = await create(
        owner,
        http_target(
            basic_auth=["alice", "s3cret"],
            headers={"X-Api-Key": "tok-123"},
            secret_headers=["X-Api-Key"],
        ),
    )
    before = await stored_row(db_url, created["id"])
    resp = await owner.patch(
        f"{API}/{created['id']}", json={"name": "renamed", "interval": 300, "tags": ["x"]}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["check"]["basic_auth"] == "***"
    assert resp.json()["check"]["headers"]["X-Api-Key"] == "***"
    after = await stored_row(db_url, created["id"])
    assert after["secrets"] == before["secrets"]
    spec = open_check(
        Sealer(SEALING_KEYS, "k1"), owner.org_id, after["id"], after["spec"], after["secrets"]
    )
    assert isinstance(spec, HttpCheck)
    assert spec.basic_auth == ("alice", "s3cret")
    assert spec.headers["X-Api-Key"] == "tok-123"


async def test_patch_with_check_replaces_the_whole_spec(owner: Persona, db_url: str) -> None:
    created = await create(owner, http_target(basic_auth=["alice", "s3cret"], method="HEAD"))
    new_check = {"type": "http", "url": "https://example.com/other"}
    resp = await owner.patch(f"{API}/{created['id']}", json={"check": new_check})
    assert resp.status_code == 200, resp.text
    check = resp.json()["check"]
    assert check["url"] == "https://example.com/other"
    assert check["method"] == "GET"
    assert check["basic_auth"] is None
    assert (await stored_row(db_url, created["id"]))["secrets"] == {}


async def test_patch_with_a_real_credential_replaces_it(owner: Persona, db_url: str) -> None:
    created = await create(owner, http_target(bearer_token="old-token"))
    new_check = {**created["check"], "bearer_token": "new-token"}
    resp = await owner.patch(f"{API}/{created['id']}", json={"check": new_check})
    assert resp.status_code == 200, resp.text
    row = await stored_row(db_url, created["id"])
    spec = open_check(
        Sealer(SEALING_KEYS, "k1"), owner.org_id, row["id"], row["spec"], row["secrets"]
    )
    assert isinstance(spec, HttpCheck)
    assert spec.bearer_token == "new-token"


async def test_patch_can_change_the_check_kind(owner: Persona) -> None:
    created = await create(owner, http_target(bearer_token="t"))
    resp = await owner.patch(
        f"{API}/{created['id']}", json={"check": {"type": "tcp", "host": "h.example", "port": 22}}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["check"] == {"type": "tcp", "host": "h.example", "port": 22, "timeout": 2000}


# -- DELETE --------------------------------------------------------------------------------------


async def test_delete_then_get_is_target_not_found(owner: Persona) -> None:
    keep = await create(owner, tcp_target("keep"))
    gone = await create(owner, tcp_target("gone"))
    resp = await owner.delete(f"{API}/{gone['id']}")
    assert resp.status_code == 204
    assert resp.content == b""
    assert_error(await owner.get(f"{API}/{gone['id']}"), 404, "TARGET_NOT_FOUND")
    assert_error(await owner.delete(f"{API}/{gone['id']}"), 404, "TARGET_NOT_FOUND")
    assert_error(
        await owner.patch(f"{API}/{gone['id']}", json={"name": "x"}), 404, "TARGET_NOT_FOUND"
    )
    assert_error(await owner.get(f"{API}/{gone['id']}/regions"), 404, "TARGET_NOT_FOUND")
    page = (await owner.get(API)).json()
    assert [t["id"] for t in page["items"]] == [keep["id"]]
    assert page["total"] == 1


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"name": "x"}),
        ("DELETE", "", None),
        ("GET", "/regions", None),
        ("PUT", "/regions", {"regions": ["default"]}),
    ],
)
@pytest.mark.parametrize(
    "bad_id",
    [
        "not-a-uuid",
        "123",
        "01a2186c-d393-72fc-ad17",
        "983b6bd4-42eb-4bb3-b7cf-f9a0ee2bd0c9",
        str(uuid.UUID(int=0)),
    ],
)
async def test_unknown_or_malformed_id_is_target_not_found(
    owner: Persona, method: str, suffix: str, body: Any, bad_id: str
) -> None:
    kw = {"json": body} if body is not None else {}
    resp = await owner.request(method, f"{API}/{bad_id}{suffix}", **kw)
    assert_error(resp, 404, "TARGET_NOT_FOUND")


# -- regions -------------------------------------------------------------------------------------


async def test_regions_default_and_replace(owner: Persona, db_url: str) -> None:
    await add_region(db_url, "eu-west")
    await add_region(db_url, "us-east")
    created = await create(owner, tcp_target())
    url = f"{API}/{created['id']}/regions"
    resp = await owner.get(url)
    assert resp.status_code == 200
    assert resp.json() == {"regions": ["default"]}

    resp = await owner.put(url, json={"regions": ["us-east", "eu-west", "us-east"]})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"regions": ["eu-west", "us-east"]}
    assert (await owner.get(url)).json() == {"regions": ["eu-west", "us-east"]}
    assert (await owner.get(f"{API}/{created['id']}")).json()["regions"] == ["eu-west", "us-east"]


async def test_put_regions_rejects_unknown_disabled_and_empty(owner: Persona, db_url: str) -> None:
    await add_region(db_url, "eu-west")
    await add_region(db_url, "off", enabled=False)
    created = await create(owner, tcp_target())
    url = f"{API}/{created['id']}/regions"
    assert_error(
        await owner.put(url, json={"regions": ["eu-west", "mars"]}),
        400,
        "UNKNOWN_REGION",
        "/regions/1",
    )
    assert_error(
        await owner.put(url, json={"regions": ["off"]}), 400, "UNKNOWN_REGION", "/regions/0"
    )
    assert_error(await owner.put(url, json={"regions": []}), 400, "INVALID_REGIONS", "/regions")
    assert_error(await owner.put(url, json={}), 400, "MISSING_FIELD", "/regions")
    assert_error(
        await owner.put(url, json={"regions": "eu-west"}), 400, "VALIDATION_ERROR", "/regions"
    )
    assert_error(
        await owner.put(url, json={"regions": ["eu-west"], "x": 1}), 400, "UNKNOWN_FIELD", "/x"
    )
    # Nothing changed.
    assert (await owner.get(url)).json() == {"regions": ["default"]}


async def test_region_count_policy_is_checked_against_the_target_regions(
    owner: Persona, db_url: str
) -> None:
    await add_region(db_url, "eu-west")
    await add_region(db_url, "us-east")
    created = await create(owner, tcp_target())
    url = f"{API}/{created['id']}"
    # One region: {count: 2} exceeds it.
    assert_error(
        await owner.patch(url, json={"region_policy": {"count": 2}}),
        422,
        "INVALID_REGION_POLICY",
        "/region_policy",
    )
    assert (
        await owner.put(f"{url}/regions", json={"regions": ["eu-west", "us-east"]})
    ).status_code == 200
    resp = await owner.patch(url, json={"region_policy": {"count": 2}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["region_policy"] == {"count": 2}
    # Shrinking the regions below the count is refused and changes nothing.
    err = assert_error(
        await owner.put(f"{url}/regions", json={"regions": ["eu-west"]}),
        422,
        "INVALID_REGION_POLICY",
        "/regions",
    )
    assert err["details"] == {"count": 2, "regions": 1}
    assert (await owner.get(f"{url}/regions")).json() == {"regions": ["eu-west", "us-east"]}


# -- alerts --------------------------------------------------------------------------------------


async def test_alert_bindings_keep_their_order_and_patch_replaces_them(
    owner: Persona, db_url: str
) -> None:
    a = await add_channel(db_url, owner.org_id, "a")
    b = await add_channel(db_url, owner.org_id, "b")
    created = await create(
        owner, {**tcp_target(), "alerts": [{"channel_id": b}, {"channel_id": a}]}
    )
    assert created["alerts"] == [{"channel_id": b}, {"channel_id": a}]
    url = f"{API}/{created['id']}"
    # Omitting alerts keeps them.
    assert (await owner.patch(url, json={"name": "n"})).json()["alerts"] == created["alerts"]
    resp = await owner.patch(url, json={"alerts": [{"channel_id": a.upper()}]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["alerts"] == [{"channel_id": a}]
    assert (await owner.patch(url, json={"alerts": []})).json()["alerts"] == []


# -- write_source --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "source"),
    [
        ({}, "api"),
        ({"User-Agent": "terraform-provider-vigil/1.2.0"}, "terraform"),
        ({"User-Agent": "Terraform/1.9.0 terraform-provider-vigil/0.3"}, "terraform"),
        ({"X-Vigil-Client": "ui"}, "ui"),
        ({"X-Vigil-Client": "UI"}, "ui"),
        ({"User-Agent": "curl/8.0", "X-Vigil-Client": "cli"}, "api"),
    ],
)
async def test_write_source_is_decided_from_the_request(
    owner: Persona, headers: dict[str, str], source: str
) -> None:
    created = await create(owner, tcp_target(), headers=headers)
    assert created["write_source"] == source
    assert (await owner.get(f"{API}/{created['id']}")).json()["write_source"] == source


@pytest.mark.parametrize("sent", ["terraform", "ui", 5, None, {"x": 1}])
async def test_write_source_in_the_body_is_ignored(owner: Persona, sent: Any) -> None:
    created = await create(owner, {**tcp_target(), "write_source": sent})
    assert created["write_source"] == "api"
    url = f"{API}/{created['id']}"
    resp = await owner.patch(url, json={"write_source": sent}, headers={"X-Vigil-Client": "ui"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["write_source"] == "ui"


async def test_every_write_restamps_write_source(owner: Persona) -> None:
    created = await create(owner, tcp_target(), headers={"X-Vigil-Client": "ui"})
    url = f"{API}/{created['id']}"
    tf = {"User-Agent": "terraform-provider-vigil/1.0"}
    assert (await owner.patch(url, json={"name": "x"}, headers=tf)).json()["write_source"] == (
        "terraform"
    )
    resp = await owner.put(f"{url}/regions", json={"regions": ["default"]})
    assert resp.status_code == 200
    after = (await owner.get(url)).json()
    assert after["write_source"] == "api"
    assert datetime.fromisoformat(after["updated_at"]) > datetime.fromisoformat(
        created["updated_at"]
    )


# -- Cache-Control -------------------------------------------------------------------------------


async def test_cache_control_on_every_target_response(owner: Persona) -> None:
    created = await create(owner, tcp_target())
    url = f"{API}/{created['id']}"
    calls: list[tuple[str, str, Any, int, str]] = [
        ("POST", API, tcp_target("b"), 201, "no-store"),
        ("POST", API, {"name": ""}, 400, "no-store"),
        ("GET", API, None, 200, "private, max-age=10"),
        ("GET", f"{API}?limit=0", None, 400, "private, max-age=10"),
        ("GET", url, None, 200, "private, max-age=10"),
        ("GET", f"{API}/{uuid.uuid4()}", None, 404, "private, max-age=10"),
        ("GET", f"{url}/regions", None, 200, "private, max-age=10"),
        ("PATCH", url, {"name": "n"}, 200, "no-store"),
        ("PATCH", url, {"interval": 0}, 400, "no-store"),
        ("PUT", f"{url}/regions", {"regions": ["default"]}, 200, "no-store"),
        ("PUT", f"{url}/regions", {"regions": ["nope"]}, 400, "no-store"),
        ("PUT", url, {}, 405, "no-store"),
        ("GET", "/api/v1/no-such-route", None, 404, "private, max-age=10"),
        ("DELETE", url, None, 204, "no-store"),
        ("DELETE", url, None, 404, "no-store"),
    ]
    for method, path, body, status, cache in calls:
        kw = {"json": body} if body is not None else {}
        resp = await owner.request(method, path, **kw)
        assert resp.status_code == status, (method, path, resp.text)
        assert resp.headers.get("cache-control") == cache, (method, path)


async def test_every_api_v1_response_is_json_with_charset(owner: Persona, anon: Persona) -> None:
    ok = await owner.get("/api/v1/targets")
    missing = await owner.get("/api/v1/targets/nope")
    unauthorized = await anon.get("/api/v1/targets")
    for resp in (ok, missing, unauthorized):
        assert resp.headers["content-type"] == "application/json; charset=utf-8", resp.headers
