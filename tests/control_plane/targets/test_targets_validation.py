"""Every validation code of /api/v1/targets, with its status and JSON-pointer ``field``.

Also: malformed bodies, wrong types, unknown and missing fields, and a hypothesis-driven check
that no body, however odd, gets a 500 or a response outside the one error envelope.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from litestar.testing import TestClient

from control_plane.app import create_app
from control_plane.core.decoding import (
    decode_body,
    decode_error_to_api,
    find_nul,
    msgspec_path_to_pointer,
)
from control_plane.settings import Settings
from tests.conftest import Persona, assert_error, make_org
from tests.control_plane.targets.test_targets_crud import (
    add_channel,
    add_region,
    create,
    http_target,
    tcp_target,
)

API = "/api/v1/targets"
JSON = {"content-type": "application/json"}


def with_path(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``body`` with the value at ``a/b/c`` replaced (or added)."""
    out = copy.deepcopy(body)
    *parents, last = path.split("/")
    node = out
    for key in parents:
        node = node[key]
    node[last] = value
    return out


def without(body: dict[str, Any], path: str) -> dict[str, Any]:
    out = copy.deepcopy(body)
    *parents, last = path.split("/")
    node = out
    for key in parents:
        node = node[key]
    del node[last]
    return out


HTTP = http_target()
TCP = tcp_target()

# (body, status, code, field): each one a single mistake in an otherwise valid body.
CASES: list[tuple[str, dict[str, Any], int, str, str | None]] = [
    # URL scheme and format
    (
        "ftp",
        with_path(HTTP, "check/url", "ftp://example.com/x"),
        400,
        "INVALID_URL_SCHEME",
        "/check/url",
    ),
    (
        "file",
        with_path(HTTP, "check/url", "file:///etc/passwd"),
        400,
        "INVALID_URL_SCHEME",
        "/check/url",
    ),
    (
        "javascript",
        with_path(HTTP, "check/url", "javascript:alert(1)"),
        400,
        "INVALID_URL_SCHEME",
        "/check/url",
    ),
    (
        "no scheme",
        with_path(HTTP, "check/url", "example.com/x"),
        400,
        "INVALID_URL_FORMAT",
        "/check/url",
    ),
    ("empty url", with_path(HTTP, "check/url", ""), 400, "INVALID_URL_FORMAT", "/check/url"),
    ("no host", with_path(HTTP, "check/url", "https://"), 400, "INVALID_URL_FORMAT", "/check/url"),
    (
        "no host path",
        with_path(HTTP, "check/url", "http:///path"),
        400,
        "INVALID_URL_FORMAT",
        "/check/url",
    ),
    (
        "space",
        with_path(HTTP, "check/url", "https://exa mple.com"),
        400,
        "INVALID_URL_FORMAT",
        "/check/url",
    ),
    (
        "newline",
        with_path(HTTP, "check/url", "https://example.com/\n"),
        400,
        "INVALID_URL_FORMAT",
        "/check/url",
    ),
    (
        "userinfo",
        with_path(HTTP, "check/url", "https://u:p@example.com"),
        400,
        "INVALID_URL_FORMAT",
        "/check/url",
    ),
    (
        "bad ipv6",
        with_path(HTTP, "check/url", "http://[::1"),
        400,
        "INVALID_URL_FORMAT",
        "/check/url",
    ),
    (
        "port 0",
        with_path(HTTP, "check/url", "http://example.com:0/"),
        400,
        "INVALID_URL_FORMAT",
        "/check/url",
    ),
    (
        "port big",
        with_path(HTTP, "check/url", "http://example.com:70000/"),
        400,
        "INVALID_URL_FORMAT",
        "/check/url",
    ),
    (
        "bad label",
        with_path(HTTP, "check/url", "http://-bad-.example/"),
        400,
        "INVALID_URL_FORMAT",
        "/check/url",
    ),
    (
        "too long",
        with_path(HTTP, "check/url", "https://example.com/" + "a" * 2100),
        400,
        "INVALID_URL_FORMAT",
        "/check/url",
    ),
    ("url type", with_path(HTTP, "check/url", 5), 400, "INVALID_URL_FORMAT", "/check/url"),
    # interval
    ("interval 0", {**TCP, "interval": 0}, 400, "INVALID_INTERVAL", "/interval"),
    ("interval negative", {**TCP, "interval": -60}, 400, "INVALID_INTERVAL", "/interval"),
    ("interval huge", {**TCP, "interval": 10**12}, 400, "INVALID_INTERVAL", "/interval"),
    ("interval string", {**TCP, "interval": "60"}, 400, "INVALID_INTERVAL", "/interval"),
    ("interval float", {**TCP, "interval": 60.5}, 400, "INVALID_INTERVAL", "/interval"),
    ("interval bool", {**TCP, "interval": True}, 400, "INVALID_INTERVAL", "/interval"),
    ("interval below floor http", {**HTTP, "interval": 9}, 422, "MIN_CHECK_INTERVAL", "/interval"),
    ("interval below floor tcp", {**TCP, "interval": 5}, 422, "MIN_CHECK_INTERVAL", "/interval"),
    # timeout
    ("timeout 0", with_path(HTTP, "check/timeout", 0), 400, "INVALID_TIMEOUT", "/check/timeout"),
    (
        "timeout negative",
        with_path(TCP, "check/timeout", -1),
        400,
        "INVALID_TIMEOUT",
        "/check/timeout",
    ),
    (
        "timeout > 60s",
        with_path(HTTP, "check/timeout", 60_001),
        400,
        "INVALID_TIMEOUT",
        "/check/timeout",
    ),
    (
        "timeout type",
        with_path(HTTP, "check/timeout", "5s"),
        400,
        "INVALID_TIMEOUT",
        "/check/timeout",
    ),
    (
        "timeout >= interval",
        {**with_path(HTTP, "check/timeout", 10_000), "interval": 10},
        400,
        "INVALID_TIMEOUT",
        "/check/timeout",
    ),
    # TCP
    ("port 0", with_path(TCP, "check/port", 0), 400, "INVALID_TCP_PORT", "/check/port"),
    ("port 65536", with_path(TCP, "check/port", 65536), 400, "INVALID_TCP_PORT", "/check/port"),
    ("port negative", with_path(TCP, "check/port", -22), 400, "INVALID_TCP_PORT", "/check/port"),
    ("port string", with_path(TCP, "check/port", "22"), 400, "INVALID_TCP_PORT", "/check/port"),
    ("port 2**70", with_path(TCP, "check/port", 2**70), 400, "INVALID_TCP_PORT", "/check/port"),
    ("host empty", with_path(TCP, "check/host", ""), 400, "INVALID_TCP_HOST", "/check/host"),
    ("host blank", with_path(TCP, "check/host", "   "), 400, "INVALID_TCP_HOST", "/check/host"),
    ("host space", with_path(TCP, "check/host", "db host"), 400, "INVALID_TCP_HOST", "/check/host"),
    (
        "host padded",
        with_path(TCP, "check/host", " db.example.com "),
        400,
        "INVALID_TCP_HOST",
        "/check/host",
    ),
    (
        "host scheme",
        with_path(TCP, "check/host", "tcp://db"),
        400,
        "INVALID_TCP_HOST",
        "/check/host",
    ),
    ("host type", with_path(TCP, "check/host", 1), 400, "INVALID_TCP_HOST", "/check/host"),
    # expected_status
    (
        "exact 99",
        with_path(HTTP, "check/expected_status", {"kind": "exact", "value": 99}),
        400,
        "INVALID_STATUS_RANGE",
        "/check/expected_status/value",
    ),
    (
        "exact 600",
        with_path(HTTP, "check/expected_status", {"kind": "exact", "value": 600}),
        400,
        "INVALID_STATUS_RANGE",
        "/check/expected_status/value",
    ),
    (
        "range reversed",
        with_path(
            HTTP, "check/expected_status", {"kind": "range", "value": {"min": 299, "max": 200}}
        ),
        400,
        "INVALID_STATUS_RANGE",
        "/check/expected_status/value",
    ),
    (
        "range out",
        with_path(
            HTTP, "check/expected_status", {"kind": "range", "value": {"min": 200, "max": 700}}
        ),
        400,
        "INVALID_STATUS_RANGE",
        "/check/expected_status/value",
    ),
    (
        "one_of empty",
        with_path(HTTP, "check/expected_status", {"kind": "one_of", "value": []}),
        400,
        "INVALID_STATUS_RANGE",
        "/check/expected_status/value",
    ),
    (
        "one_of bad",
        with_path(HTTP, "check/expected_status", {"kind": "one_of", "value": [200, 999]}),
        400,
        "INVALID_STATUS_RANGE",
        "/check/expected_status/value/1",
    ),
    (
        "status kind",
        with_path(HTTP, "check/expected_status", {"kind": "between", "value": 1}),
        400,
        "INVALID_STATUS_RANGE",
        "/check/expected_status/kind",
    ),
    (
        "status value type",
        with_path(HTTP, "check/expected_status", {"kind": "exact", "value": "200"}),
        400,
        "INVALID_STATUS_RANGE",
        "/check/expected_status/value",
    ),
    # TLS verification + credentials
    (
        "no verify + basic",
        with_path(http_target(basic_auth=["u", "p"]), "check/verify_tls", False),
        400,
        "INVALID_TLS_CRED_COMBO",
        "/check/verify_tls",
    ),
    (
        "no verify + bearer",
        with_path(http_target(bearer_token="t"), "check/verify_tls", False),
        400,
        "INVALID_TLS_CRED_COMBO",
        "/check/verify_tls",
    ),
    # redaction sentinel
    (
        "sentinel basic string",
        http_target(basic_auth="***"),
        400,
        "REDACTION_SENTINEL",
        "/check/basic_auth",
    ),
    (
        "sentinel basic pass",
        http_target(basic_auth=["alice", "***"]),
        400,
        "REDACTION_SENTINEL",
        "/check/basic_auth/1",
    ),
    (
        "sentinel basic user",
        http_target(basic_auth=["***", "pw"]),
        400,
        "REDACTION_SENTINEL",
        "/check/basic_auth/0",
    ),
    (
        "sentinel bearer",
        http_target(bearer_token="***"),
        400,
        "REDACTION_SENTINEL",
        "/check/bearer_token",
    ),
    (
        "sentinel header",
        http_target(headers={"Authorization": "***"}),
        400,
        "REDACTION_SENTINEL",
        "/check/headers/Authorization",
    ),
    # alert fields
    (
        "confirmations 0",
        {**TCP, "alert_confirmations": 0},
        400,
        "INVALID_ALERT_CONFIG",
        "/alert_confirmations",
    ),
    (
        "confirmations -1",
        {**TCP, "alert_confirmations": -1},
        400,
        "INVALID_ALERT_CONFIG",
        "/alert_confirmations",
    ),
    (
        "confirmations type",
        {**TCP, "alert_confirmations": "2"},
        400,
        "INVALID_ALERT_CONFIG",
        "/alert_confirmations",
    ),
    (
        "renotify 30",
        {**TCP, "renotify_interval_secs": 30},
        400,
        "INVALID_ALERT_CONFIG",
        "/renotify_interval_secs",
    ),
    (
        "renotify 59",
        {**TCP, "renotify_interval_secs": 59},
        400,
        "INVALID_ALERT_CONFIG",
        "/renotify_interval_secs",
    ),
    (
        "renotify -1",
        {**TCP, "renotify_interval_secs": -1},
        400,
        "INVALID_ALERT_CONFIG",
        "/renotify_interval_secs",
    ),
    ("alerts not a list", {**TCP, "alerts": "ops"}, 400, "INVALID_ALERT_CONFIG", "/alerts"),
    (
        "alert not uuid",
        {**TCP, "alerts": [{"channel_id": "ops"}]},
        400,
        "INVALID_ALERT_CONFIG",
        "/alerts/0/channel_id",
    ),
    (
        "alert unknown",
        {**TCP, "alerts": [{"channel_id": str(uuid.uuid4())}]},
        400,
        "INVALID_ALERT_CONFIG",
        "/alerts/0/channel_id",
    ),
    (
        "alert id type",
        {**TCP, "alerts": [{"channel_id": 7}]},
        400,
        "INVALID_ALERT_CONFIG",
        "/alerts/0/channel_id",
    ),
    # region policy: a bad shape is 400, a count that does not fit the regions is 422
    (
        "policy word",
        {**TCP, "region_policy": "sometimes"},
        400,
        "INVALID_REGION_POLICY",
        "/region_policy",
    ),
    (
        "policy case",
        {**TCP, "region_policy": "ANY"},
        400,
        "INVALID_REGION_POLICY",
        "/region_policy",
    ),
    ("policy int", {**TCP, "region_policy": 2}, 400, "INVALID_REGION_POLICY", "/region_policy"),
    (
        "policy list",
        {**TCP, "region_policy": ["any"]},
        400,
        "INVALID_REGION_POLICY",
        "/region_policy",
    ),
    ("policy null", {**TCP, "region_policy": None}, 400, "INVALID_REGION_POLICY", "/region_policy"),
    (
        "policy count type",
        {**TCP, "region_policy": {"count": "2"}},
        400,
        "INVALID_REGION_POLICY",
        "/region_policy/count",
    ),
    (
        "policy count 0",
        {**TCP, "region_policy": {"count": 0}},
        422,
        "INVALID_REGION_POLICY",
        "/region_policy",
    ),
    (
        "policy count 2 of 1",
        {**TCP, "region_policy": {"count": 2}},
        422,
        "INVALID_REGION_POLICY",
        "/region_policy",
    ),
    (
        "policy count negative",
        {**TCP, "region_policy": {"count": -1}},
        422,
        "INVALID_REGION_POLICY",
        "/region_policy",
    ),
    # name and tags
    ("name empty", {**TCP, "name": ""}, 400, "INVALID_NAME", "/name"),
    ("name blank", {**TCP, "name": "   "}, 400, "INVALID_NAME", "/name"),
    ("name long", {**TCP, "name": "n" * 201}, 400, "INVALID_NAME", "/name"),
    ("name control", {**TCP, "name": "a\x07b"}, 400, "INVALID_NAME", "/name"),
    ("name nul", {**TCP, "name": "a\x00b"}, 400, "INVALID_NAME", "/name"),
    ("name type", {**TCP, "name": 42}, 400, "INVALID_NAME", "/name"),
    ("tag empty", {**TCP, "tags": ["ok", ""]}, 400, "INVALID_TAG", "/tags/1"),
    ("tag space", {**TCP, "tags": ["has space"]}, 400, "INVALID_TAG", "/tags/0"),
    ("tag comma", {**TCP, "tags": ["a,b"]}, 400, "INVALID_TAG", "/tags/0"),
    ("tag long", {**TCP, "tags": ["t" * 65]}, 400, "INVALID_TAG", "/tags/0"),
    ("tag nul", {**TCP, "tags": ["a\x00"]}, 400, "INVALID_TAG", "/tags/0"),
    ("too many tags", {**TCP, "tags": [f"t{i}" for i in range(51)]}, 400, "INVALID_TAG", "/tags"),
    ("tags type", {**TCP, "tags": "prod"}, 400, "INVALID_TAG", "/tags"),
    ("tag type", {**TCP, "tags": [1]}, 400, "INVALID_TAG", "/tags/0"),
    # headers
    (
        "header name",
        http_target(headers={"Bad Header": "x"}),
        400,
        "INVALID_HEADER",
        "/check/headers/Bad Header",
    ),
    (
        "header newline",
        http_target(headers={"X-A": "a\r\nInjected: 1"}),
        400,
        "INVALID_HEADER",
        "/check/headers/X-A",
    ),
    (
        "header value type",
        http_target(headers={"X-A": 1}),
        400,
        "INVALID_HEADER",
        # msgspec does not name the key of a bad dict value: the pointer stops at the dict.
        "/check/headers",
    ),
    (
        "header nul",
        http_target(headers={"X-A": "\x00"}),
        400,
        "INVALID_HEADER",
        "/check/headers/X-A",
    ),
    # unknown and missing fields, wrong types elsewhere
    ("unknown top", {**TCP, "colour": "red"}, 400, "UNKNOWN_FIELD", "/colour"),
    ("unknown check", with_path(TCP, "check/ttl", 1), 400, "UNKNOWN_FIELD", "/check/ttl"),
    (
        "unknown status",
        with_path(HTTP, "check/expected_status", {"kind": "exact", "value": 200, "x": 1}),
        400,
        "UNKNOWN_FIELD",
        "/check/expected_status/x",
    ),
    (
        "unknown alert",
        {**TCP, "alerts": [{"channel_id": str(uuid.uuid4()), "mute": True}]},
        400,
        "UNKNOWN_FIELD",
        "/alerts/0/mute",
    ),
    (
        "unknown policy",
        {**TCP, "region_policy": {"count": 1, "of": 2}},
        400,
        "UNKNOWN_FIELD",
        "/region_policy/of",
    ),
    ("tcp field on http", with_path(HTTP, "check/port", 80), 400, "UNKNOWN_FIELD", "/check/port"),
    ("server field id", {**TCP, "id": str(uuid.uuid4())}, 400, "UNKNOWN_FIELD", "/id"),
    ("missing name", without(TCP, "name"), 400, "MISSING_FIELD", "/name"),
    ("missing check", without(TCP, "check"), 400, "MISSING_FIELD", "/check"),
    ("missing type", without(TCP, "check/type"), 400, "MISSING_FIELD", "/check/type"),
    ("missing url", without(HTTP, "check/url"), 400, "MISSING_FIELD", "/check/url"),
    ("missing host", without(TCP, "check/host"), 400, "MISSING_FIELD", "/check/host"),
    ("missing port", without(TCP, "check/port"), 400, "MISSING_FIELD", "/check/port"),
    ("missing count", {**TCP, "region_policy": {}}, 400, "MISSING_FIELD", "/region_policy/count"),
    ("missing channel", {**TCP, "alerts": [{}]}, 400, "MISSING_FIELD", "/alerts/0/channel_id"),
    ("check type", with_path(TCP, "check/type", "ftp"), 400, "VALIDATION_ERROR", "/check/type"),
    ("check not object", {**TCP, "check": "tcp://db:5432"}, 400, "VALIDATION_ERROR", "/check"),
    ("check null", {**TCP, "check": None}, 400, "VALIDATION_ERROR", "/check"),
    ("enabled string", {**TCP, "enabled": "yes"}, 400, "VALIDATION_ERROR", "/enabled"),
    ("method", with_path(HTTP, "check/method", "FETCH"), 400, "VALIDATION_ERROR", "/check/method"),
    (
        "verify_tls type",
        with_path(HTTP, "check/verify_tls", "false"),
        400,
        "VALIDATION_ERROR",
        "/check/verify_tls",
    ),
    (
        "basic_auth short",
        http_target(basic_auth=["only-user"]),
        400,
        "VALIDATION_ERROR",
        "/check/basic_auth",
    ),
    (
        "basic_auth string",
        http_target(basic_auth="alice:pw"),
        400,
        "VALIDATION_ERROR",
        "/check/basic_auth",
    ),
    (
        "basic_auth empty user",
        http_target(basic_auth=["", "pw"]),
        400,
        "VALIDATION_ERROR",
        "/check/basic_auth/0",
    ),
    (
        "bearer blank",
        http_target(bearer_token="  "),
        400,
        "VALIDATION_ERROR",
        "/check/bearer_token",
    ),
    (
        "max_redirects",
        with_path(HTTP, "check/max_redirects", 21),
        400,
        "VALIDATION_ERROR",
        "/check/max_redirects",
    ),
    ("body nul", with_path(HTTP, "check/body", "a\x00"), 400, "VALIDATION_ERROR", "/check/body"),
]


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [pytest.param(b, s, c, f, id=name) for name, b, s, c, f in CASES],
)
async def test_create_rejects_with_code_and_pointer(
    owner: Persona, body: dict[str, Any], status: int, code: str, field: str | None
) -> None:
    assert_error(await owner.post(API, json=body), status, code, field)
    page = (await owner.get(API)).json()
    assert page["total"] == 0, "a rejected create must store nothing"


PATCH_CASES = [
    (name, b, s, c, f)
    for name, b, s, c, f in CASES
    if c not in ("MISSING_FIELD",) and name not in ("server field id",)
]


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [pytest.param(b, s, c, f, id=name) for name, b, s, c, f in PATCH_CASES],
)
async def test_patch_rejects_with_code_and_pointer(
    owner: Persona, body: dict[str, Any], status: int, code: str, field: str | None
) -> None:
    created = await create(owner, tcp_target("before"))
    url = f"{API}/{created['id']}"
    assert_error(await owner.patch(url, json=body), status, code, field)
    assert (await owner.get(url)).json() == created, "a rejected PATCH must change nothing"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "/name"),
        ({"interval": None}, "/interval"),
        ({"enabled": None}, "/enabled"),
        ({"tags": None}, "/tags"),
        ({"check": {"type": "tcp"}}, "/check/host"),
    ],
)
async def test_patch_null_or_partial_values_are_rejected(
    owner: Persona, body: dict[str, Any], field: str
) -> None:
    created = await create(owner, tcp_target())
    resp = await owner.patch(f"{API}/{created['id']}", json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["field"] == field


async def test_patch_interval_below_floor_is_422(owner: Persona) -> None:
    created = await create(owner, tcp_target())
    url = f"{API}/{created['id']}"
    err = assert_error(
        await owner.patch(url, json={"interval": 9}), 422, "MIN_CHECK_INTERVAL", "/interval"
    )
    assert err["details"]["floor"] == 10
    # Changing the check re-checks the kept interval against the new timeout.
    assert_error(
        await owner.patch(url, json={"interval": 10, "check": {**TCP["check"], "timeout": 10_000}}),
        400,
        "INVALID_TIMEOUT",
        "/check/timeout",
    )


async def test_redacted_read_sent_back_is_refused(owner: Persona) -> None:
    """The GET -> PATCH round trip must not overwrite a stored credential with ``***``."""
    for check in (
        {"basic_auth": ["alice", "pw"]},
        {"bearer_token": "tok"},
    ):
        created = await create(owner, http_target(**check))
        url = f"{API}/{created['id']}"
        read = (await owner.get(url)).json()
        field = "/check/basic_auth" if "basic_auth" in check else "/check/bearer_token"
        assert_error(
            await owner.patch(url, json={"check": read["check"]}), 400, "REDACTION_SENTINEL", field
        )
        body = {k: read[k] for k in ("name", "check", "interval", "tags")}
        assert_error(await owner.post(API, json=body), 400, "REDACTION_SENTINEL", field)


@pytest.mark.parametrize("interval", [10, 60, 3600, 604_800])
async def test_interval_bounds_accepted(owner: Persona, interval: int) -> None:
    created = await create(owner, {**tcp_target(), "interval": interval})
    assert created["interval"] == interval


async def test_org_floor_raises_the_minimum_interval(owner: Persona, db_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE orgs SET min_check_interval_secs = 60 WHERE id = %s", (owner.org_id,)
        )
    err = assert_error(
        await owner.post(API, json={**tcp_target(), "interval": 30}),
        422,
        "MIN_CHECK_INTERVAL",
        "/interval",
    )
    assert err["details"] == {"floor": 60, "kind_min": 10, "org_min": 60}
    assert (await owner.post(API, json={**tcp_target(), "interval": 60})).status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {**TCP, "renotify_interval_secs": 0},
        {**TCP, "renotify_interval_secs": 60},
        {**TCP, "alert_confirmations": 1},
        # verify_tls = false with a credential is fine over plain http.
        {
            "name": "plain",
            "check": {
                "type": "http",
                "url": "http://example.com",
                "verify_tls": False,
                "basic_auth": ["u", "p"],
            },
        },
        with_path(HTTP, "check/verify_tls", False),
        with_path(HTTP, "check/url", "http://[2001:db8::1]:8080/x"),
        with_path(HTTP, "check/url", "HTTPS://Example.COM"),
        with_path(TCP, "check/host", "192.0.2.10"),
        with_path(TCP, "check/host", "[2001:db8::1]"),
        with_path(TCP, "check/port", 65535),
        {**with_path(HTTP, "check/timeout", 60_000), "interval": 61},
        {**TCP, "region_policy": {"count": 1}},
    ],
)
async def test_edge_values_that_are_valid(owner: Persona, body: dict[str, Any]) -> None:
    resp = await owner.post(API, json=body)
    assert resp.status_code == 201, resp.text


async def test_duplicate_and_foreign_channels_are_invalid_alert_config(
    owner: Persona, outsider: Persona, db_url: str
) -> None:
    mine = await add_channel(db_url, owner.org_id, "ops")
    theirs = await add_channel(db_url, outsider.org_id, "ops")
    err = assert_error(
        await owner.post(API, json={**TCP, "alerts": [{"channel_id": mine}, {"channel_id": mine}]}),
        400,
        "INVALID_ALERT_CONFIG",
        "/alerts/1/channel_id",
    )
    assert "duplicate" in err["message"]
    err = assert_error(
        await owner.post(
            API, json={**TCP, "alerts": [{"channel_id": mine}, {"channel_id": theirs}]}
        ),
        400,
        "INVALID_ALERT_CONFIG",
        "/alerts/1/channel_id",
    )
    assert "does not exist" in err["message"]
    created = await create(owner, {**TCP, "alerts": [{"channel_id": mine}]})
    assert_error(
        await owner.patch(f"{API}/{created['id']}", json={"alerts": [{"channel_id": theirs}]}),
        400,
        "INVALID_ALERT_CONFIG",
        "/alerts/0/channel_id",
    )
    assert (await owner.get(f"{API}/{created['id']}")).json()["alerts"] == [{"channel_id": mine}]


async def test_region_count_beyond_regions_is_422_but_fits_when_regions_exist(
    owner: Persona, db_url: str
) -> None:
    await add_region(db_url, "eu-west")
    created = await create(owner, tcp_target())
    err = assert_error(
        await owner.patch(f"{API}/{created['id']}", json={"region_policy": {"count": 2}}),
        422,
        "INVALID_REGION_POLICY",
        "/region_policy",
    )
    assert err["details"] == {"count": 2, "regions": 1}


# -- bodies that are not a target at all ------------------------------------------------------


BAD_BODIES = [
    pytest.param(b"{", "INVALID_JSON", id="truncated"),
    pytest.param(b'{"name": "a",}', "INVALID_JSON", id="trailing comma"),
    pytest.param(b"{'name': 'a'}", "INVALID_JSON", id="single quotes"),
    pytest.param(b'{"name": "a"} x', "INVALID_JSON", id="trailing garbage"),
    pytest.param(b"", "INVALID_JSON", id="empty"),
    pytest.param(b"   ", "INVALID_JSON", id="blank"),
    pytest.param(b'{"name": "\xff\xfe"}', "INVALID_JSON", id="not utf-8"),
    pytest.param(b'{"name": "\\ud800"}', "INVALID_JSON", id="lone surrogate"),
    pytest.param(b"NaN", "INVALID_JSON", id="nan"),
    pytest.param(b"[]", "VALIDATION_ERROR", id="array"),
    pytest.param(b"null", "VALIDATION_ERROR", id="null"),
    pytest.param(b'"target"', "VALIDATION_ERROR", id="string"),
    pytest.param(b"42", "VALIDATION_ERROR", id="number"),
]


@pytest.mark.parametrize(("raw", "code"), BAD_BODIES)
async def test_create_rejects_bodies_that_are_not_json_objects(
    owner: Persona, raw: bytes, code: str
) -> None:
    assert_error(await owner.post(API, content=raw, headers=JSON), 400, code)


@pytest.mark.parametrize(("raw", "code"), BAD_BODIES)
async def test_patch_and_put_regions_reject_bad_bodies(
    owner: Persona, raw: bytes, code: str
) -> None:
    created = await create(owner, tcp_target())
    url = f"{API}/{created['id']}"
    assert_error(await owner.patch(url, content=raw, headers=JSON), 400, code)
    assert_error(await owner.put(f"{url}/regions", content=raw, headers=JSON), 400, code)


async def test_put_regions_value_errors(owner: Persona) -> None:
    created = await create(owner, tcp_target())
    url = f"{API}/{created['id']}/regions"
    assert_error(await owner.put(url, json={"regions": [1]}), 400, "VALIDATION_ERROR", "/regions/0")
    assert_error(
        await owner.put(url, json={"regions": ["a\x00"]}), 400, "VALIDATION_ERROR", "/regions/0"
    )
    assert_error(
        await owner.put(url, json={"regions": ["Not A Slug"]}), 400, "UNKNOWN_REGION", "/regions/0"
    )


# -- no body is ever a 500 ------------------------------------------------------------------------

# Characters that have broken storage or parsing before: NUL, line breaks, the sentinel's star.
TEXT = st.text(
    alphabet=st.characters(codec="utf-8") | st.sampled_from(["\x00", "\r", "\n", "*", "/", "~"]),
    max_size=30,
)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
    | st.sampled_from(["***", "", "http://", "https://example.com", "tcp", "http", "majority"])
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
FIELD_PATHS = [
    "name",
    "interval",
    "enabled",
    "tags",
    "alerts",
    "alert_confirmations",
    "notify_recovery",
    "renotify_interval_secs",
    "region_policy",
    "write_source",
    "check",
    "check/type",
    "check/url",
    "check/method",
    "check/timeout",
    "check/follow_redirects",
    "check/max_redirects",
    "check/expected_status",
    "check/expected_body_contains",
    "check/headers",
    "check/body",
    "check/verify_tls",
    "check/basic_auth",
    "check/bearer_token",
    "check/host",
    "check/port",
]
KEYS = st.sampled_from([p.split("/")[-1] for p in FIELD_PATHS]) | TEXT


def mutated_body() -> st.SearchStrategy[Any]:
    """A valid body with one to three fields replaced by arbitrary JSON (or removed)."""
    base = st.sampled_from([HTTP, TCP, http_target(basic_auth=["u", "p"], bearer_token="t")])
    change = st.tuples(st.sampled_from(FIELD_PATHS), JSON_VALUES | st.just(...))

    def apply(args: tuple[dict[str, Any], list[tuple[str, Any]]]) -> Any:
        body, changes = args
        out = copy.deepcopy(body)
        for path, value in changes:
            *parents, last = path.split("/")
            node = out
            for key in parents:
                if not isinstance(node.get(key), dict):
                    node[key] = {}
                node = node[key]
            if value is ...:
                node.pop(last, None)
            else:
                node[last] = value
        return out

    return st.tuples(base, st.lists(change, min_size=1, max_size=3)).map(apply)


def string_fields() -> st.SearchStrategy[Any]:
    """A valid body whose free-text fields carry arbitrary text (the likeliest to reach storage)."""
    return st.fixed_dictionaries(
        {
            "name": TEXT,
            "tags": st.lists(TEXT, max_size=3),
            "check": st.fixed_dictionaries(
                {"type": st.just("http"), "url": st.just("https://example.com/")},
                optional={
                    "headers": st.dictionaries(TEXT, TEXT, max_size=2),
                    "body": TEXT,
                    "expected_body_contains": TEXT,
                    "bearer_token": TEXT,
                    "basic_auth": st.tuples(TEXT, TEXT).map(list),
                },
            ),
        }
    )


BODIES = (
    mutated_body()
    | string_fields()
    | st.fixed_dictionaries({"regions": st.lists(TEXT, max_size=3)})
    | st.dictionaries(KEYS, JSON_VALUES, max_size=6)
    | st.fixed_dictionaries({"name": JSON_VALUES, "check": st.dictionaries(KEYS, JSON_VALUES)})
    | JSON_VALUES
)


def assert_well_formed(resp: Any) -> None:
    assert resp.status_code < 500, resp.text
    if resp.status_code >= 400:
        body = resp.json()
        assert set(body) == {"error"}
        err = body["error"]
        assert set(err) == {"code", "message", "field", "details", "trace_id"}
        assert err["code"].isupper() and err["message"]
        assert err["field"] is None or err["field"].startswith("/")
        assert resp.headers["cache-control"] in ("no-store", "private, max-age=10")


def test_random_bodies_never_get_a_500(settings: Settings, db_url: str) -> None:
    loop = asyncio.new_event_loop()
    try:
        _, token = loop.run_until_complete(make_org(db_url, "Fuzz"))
    finally:
        loop.close()
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings)) as client:
        created = client.post(API, json=tcp_target("fuzz"), headers=headers)
        assert created.status_code == 201
        url = f"{API}/{created.json()['id']}"

        @given(body=BODIES)
        @hsettings(
            max_examples=250,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        def post_patch_put(body: Any) -> None:
            resp = client.post(API, json=body, headers=headers)
            assert_well_formed(resp)
            if resp.status_code == 201:
                assert uuid.UUID(resp.json()["id"]).version == 7
            assert_well_formed(client.patch(url, json=body, headers=headers))
            assert_well_formed(client.put(f"{url}/regions", json=body, headers=headers))

        post_patch_put()

        @given(
            params=st.dictionaries(
                st.sampled_from(["limit", "offset", "tag", "enabled", "q"]),
                TEXT | st.integers().map(str),
                max_size=5,
            )
        )
        @hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        def list_with(params: dict[str, str]) -> None:
            resp = client.get(API, params=params, headers=headers)
            assert_well_formed(resp)
            if resp.status_code == 200:
                page = resp.json()
                assert set(page) == {"items", "total", "limit", "offset"}
                assert 1 <= page["limit"] <= 1000

        list_with()


# -- the decoding helpers themselves -------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "pointer"),
    [
        ("", ""),
        (".name", "/name"),
        (".check.port", "/check/port"),
        (".tags[3]", "/tags/3"),
        (".alerts[0].channel_id", "/alerts/0/channel_id"),
        (".check.headers[...]", "/check/headers"),
    ],
)
def test_msgspec_path_to_pointer(path: str, pointer: str) -> None:
    assert msgspec_path_to_pointer(path) == pointer


def test_decode_error_names_the_field_code_of_the_nearest_parent() -> None:
    codes = {"/region_policy": "INVALID_REGION_POLICY"}
    err = decode_error_to_api(
        "Expected `int`, got `str` - at `$.region_policy.count`", field_codes=codes
    )
    assert (err.code, err.field) == ("INVALID_REGION_POLICY", "/region_policy/count")
    err = decode_error_to_api("Expected `int`, got `str` - at `$.interval`", field_codes=codes)
    assert (err.code, err.field) == ("VALIDATION_ERROR", "/interval")
    err = decode_error_to_api(
        "Object contains unknown field `x` - at `$.region_policy`", field_codes=codes
    )
    assert (err.code, err.field) == ("UNKNOWN_FIELD", "/region_policy/x")
    err = decode_error_to_api("Object missing required field `a/b`", field_codes=codes)
    assert (err.code, err.field) == ("MISSING_FIELD", "/a~1b")


def test_find_nul_points_at_values_and_keys() -> None:
    assert find_nul({"a": ["x", "y\x00"]}) == "/a/1"
    assert find_nul({"a": {"k\x00": 1}}) == "/a/k\x00"
    assert find_nul({"a/b": "\x00"}) == "/a~1b"
    assert find_nul({"a": [1, None, {"b": "ok"}]}) is None


def test_decode_body_is_strict() -> None:
    import msgspec

    class Body(msgspec.Struct, forbid_unknown_fields=True):
        n: int

    assert decode_body(b'{"n": 1}', Body) == Body(1)
    for raw in (b'{"n": "1"}', b'{"n": 1.0}', b'{"n": true}'):
        with pytest.raises(Exception) as info:
            decode_body(raw, Body)
        assert getattr(info.value, "code", None) == "VALIDATION_ERROR"
        assert getattr(info.value, "field", None) == "/n"
