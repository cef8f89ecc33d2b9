"""No input, however malformed, is a 500: bodies nested too deeply, NULs in query parameters,
bodies that are not JSON, headers too large. Every route is found from the OpenAPI document, so
a new route is covered the day it is added."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from litestar import Litestar

from control_plane.core.decoding import find_nul
from control_plane.core.text import without_nul
from tests.conftest import Persona, assert_error
from tests.monitoring_helpers import make_agent

DEPTH = 10_000
DEEP_ARRAY = b"[" * DEPTH + b"]" * DEPTH
DEEP_OBJECT = b'{"a":' * DEPTH + b"1" + b"}" * DEPTH
# Deep where the body type expects an object: inside a field, not at the top.
DEEP_IN_FIELD = b'{"name":' + DEEP_ARRAY + b"}"
_BODY_METHODS = ("post", "put", "patch")


def operations(app: Litestar) -> list[tuple[str, str, dict[str, Any]]]:
    doc = app.openapi_schema.to_schema()
    found = []
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                found.append((method.upper(), path, operation))
    return found


def concrete(path: str) -> str:
    """A path template with every parameter filled in (an id that names nothing)."""
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


def caller(path: str, owner: Persona, operator: Persona, agent: Persona) -> Persona:
    if path.startswith("/operator/"):
        return operator
    if path.startswith("/api/agent/"):
        return agent
    return owner


def json_routes(app: Litestar) -> list[tuple[str, str]]:
    return [
        (m, p)
        for m, p, op in operations(app)
        # A multipart upload (a status page's logo) is not a JSON route.
        if "application/json" in op.get("requestBody", {}).get("content", {})
    ]


async def test_every_json_route_is_found(app: Litestar) -> None:
    routes = json_routes(app)
    assert ("POST", "/api/agent/ingest") in routes
    assert ("POST", "/api/agent/lease") in routes
    assert ("POST", "/api/v1/targets") in routes
    assert ("PATCH", "/operator/regions/{region_id}") in routes


@pytest.mark.parametrize(
    "body", [DEEP_ARRAY, DEEP_OBJECT, DEEP_IN_FIELD], ids=["array", "object", "field"]
)
async def test_json_nested_ten_thousand_deep_is_invalid_json_on_every_json_route(
    app: Litestar, owner: Persona, operator: Persona, body: bytes
) -> None:
    agent = (await make_agent(operator)).persona
    for method, path in json_routes(app):
        who = caller(path, owner, operator, agent)
        resp = await who.request(
            method, concrete(path), content=body, headers={"Content-Type": "application/json"}
        )
        err = assert_error(resp, 400, "INVALID_JSON")
        assert "nested too deeply" in err["message"], (method, path, err)


def string_query_parameters(app: Litestar) -> list[tuple[str, str, str]]:
    """(method, path, name) of every query parameter that takes a string."""
    found = []
    for method, path, operation in operations(app):
        for param in operation.get("parameters", []):
            if param["in"] != "query":
                continue
            schema = param.get("schema", {})
            types = {s.get("type") for s in schema.get("oneOf", [schema])}
            if "string" in types:
                found.append((method, path, param["name"]))
    return found


async def test_every_string_query_parameter_is_found(app: Litestar) -> None:
    names = {(path, name) for _, path, name in string_query_parameters(app)}
    for expected in [
        ("/api/v1/targets", "tag"),
        ("/api/v1/targets", "q"),
        ("/api/v1/targets/{target_id}/results", "region"),
        ("/api/v1/targets/{target_id}/results", "from"),
        ("/operator/agents", "region"),
    ]:
        assert expected in names


@pytest.mark.parametrize("nul", ["%00", "a%00b"])
async def test_a_nul_in_any_string_query_parameter_is_invalid_query_param(
    app: Litestar, owner: Persona, operator: Persona, nul: str
) -> None:
    agent = (await make_agent(operator)).persona
    target = await owner.post(
        "/api/v1/targets",
        json={"name": "t", "check": {"type": "http", "url": "https://example.com"}},
    )
    assert target.status_code == 201, target.text
    for method, path, name in string_query_parameters(app):
        filled = re.sub(r"\{target_id\}", target.json()["id"], path)
        who = caller(path, owner, operator, agent)
        resp = await who.request(method, f"{concrete(filled)}?{name}={nul}")
        assert_error(resp, 400, "INVALID_QUERY_PARAM", f"/{name}")


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"]
)
async def test_a_body_that_is_not_json_is_unsupported_media_type_on_every_json_route(
    app: Litestar, owner: Persona, operator: Persona, content_type: str | None
) -> None:
    agent = (await make_agent(operator)).persona
    headers = {"Content-Type": content_type} if content_type else {}
    for method, path in json_routes(app):
        who = caller(path, owner, operator, agent)
        resp = await who.request(method, concrete(path), content=b'{"a": 1}', headers=headers)
        err = assert_error(resp, 415, "UNSUPPORTED_MEDIA_TYPE")
        assert err["details"] == {"accepted": ["application/json", "*/*+json"]}, err


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/vnd.x+json"],
)
async def test_json_content_types_are_accepted(owner: Persona, content_type: str) -> None:
    resp = await owner.post(
        "/api/v1/targets",
        content=b'{"name": "t", "check": {"type": "http", "url": "https://example.com"}}',
        headers={"Content-Type": content_type},
    )
    assert resp.status_code == 201, resp.text


async def test_heartbeat_pings_take_any_body(owner: Persona, anon: Persona) -> None:
    created = await owner.post(
        "/api/v1/targets", json={"name": "cron", "check": {"type": "heartbeat"}}
    )
    assert created.status_code == 201, created.text
    path = created.json()["heartbeat"]["url"]
    for suffix in ("", "/start", "/fail"):
        resp = await anon.post(
            path + suffix, content=b"exit 1: disk full", headers={"Content-Type": "text/plain"}
        )
        assert resp.status_code == 200, resp.text


async def test_request_headers_over_16_kib_are_refused_in_the_envelope(owner: Persona) -> None:
    big = {f"X-Pad-{i}": "v" * 1000 for i in range(17)}
    resp = await owner.get("/api/v1/targets", headers=big)
    assert_error(resp, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE")
    fits = {f"X-Pad-{i}": "v" * 1000 for i in range(14)}
    assert (await owner.get("/api/v1/targets", headers=fits)).status_code == 200


async def test_a_nul_in_a_query_parameter_name_is_refused(owner: Persona) -> None:
    resp = await owner.get("/api/v1/targets?ta%00g=x")
    assert_error(resp, 400, "INVALID_QUERY_PARAM", "/tag")


async def test_authentication_comes_before_the_media_type(anon: Persona) -> None:
    resp = await anon.post("/api/v1/targets", content=b"x", headers={"Content-Type": "text/plain"})
    assert_error(resp, 401, "UNAUTHORIZED")


def test_nul_helpers_walk_any_depth_without_recursion() -> None:
    deep: list[Any] = []
    cur = deep
    for _ in range(100_000):
        nxt: list[Any] = []
        cur.append(nxt)
        cur = nxt
    cur.append({"k\x00": "v\x00"})
    assert find_nul(deep) == "/0" * 100_000 + "/0/k\x00"
    cleaned = without_nul(deep)
    for _ in range(100_000):
        cleaned = cleaned[0]
    assert cleaned == [{"k\ufffd": "v\ufffd"}]
    assert without_nul({"a": [1, None, 2.5, True, "x\x00"]}) == {
        "a": [1, None, 2.5, True, "x\ufffd"]
    }
