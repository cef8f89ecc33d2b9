"""The OpenAPI document says what the app does: every status an operation answers, the real
bounds of its parameters, value shapes that match one schema only, and OPTIONS/405 ``Allow``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Persona, assert_error
from tests.control_plane.core.test_openapi import openapi

_METHODS = ("get", "post", "put", "patch", "delete")


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in _METHODS
    ]


async def test_every_operation_documents_the_errors_any_route_can_answer(anon: Persona) -> None:
    doc = await openapi(anon)
    for path, method, op in operations(doc):
        statuses = set(op["responses"])
        where = (method, path)
        assert {"400", "431", "default"} <= statuses, where
        if op.get("security"):
            assert "401" in statuses, where
        if "{" in path:
            assert "404" in statuses, where
        if "requestBody" in op:
            assert {"413", "415"} <= statuses, where
        for status, response in op["responses"].items():
            if status[0] in "45":
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/ErrorEnvelope", (where, status)


@pytest.mark.parametrize(
    ("path", "method", "status", "code"),
    [
        ("/api/v1/targets/{target_id}/regions", "put", "422", "HEARTBEAT_HAS_NO_REGIONS"),
        ("/api/v1/targets/{target_id}/check-now", "post", "422", "HEARTBEAT_HAS_NO_REGIONS"),
        ("/api/v1/targets/{target_id}/check-now", "post", "503", "PROBE_UNAVAILABLE"),
        ("/api/v1/targets", "post", "422", "MIN_CHECK_INTERVAL"),
        ("/operator/agents", "post", "422", "UNKNOWN_REGION"),
    ],
)
async def test_route_specific_errors_are_documented(
    anon: Persona, path: str, method: str, status: str, code: str
) -> None:
    doc = await openapi(anon)
    assert code in doc["paths"][path][method]["responses"][status]["description"]


async def test_page_parameters_state_their_bounds(anon: Persona) -> None:
    doc = await openapi(anon)
    seen = 0
    for _, _, op in operations(doc):
        for param in op.get("parameters", []):
            if param["name"] == "limit":
                assert param["schema"]["minimum"] == 1
                seen += 1
            elif param["name"] == "offset":
                assert param["schema"]["minimum"] == 0
                seen += 1
    assert seen >= 10


async def test_no_one_of_can_match_one_value_twice(anon: Persona) -> None:
    doc = await openapi(anon)
    stack: list[Any] = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            members = node.get("oneOf", [])
            types = [m.get("type") for m in members if isinstance(m, dict)]
            assert not {"integer", "number"} <= set(types), node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    value = doc["components"]["schemas"]["Assertion"]["properties"]["value"]
    assert {m["type"] for m in value["anyOf"]} == {"string", "integer", "number", "boolean"}


async def test_structs_that_refuse_unknown_fields_say_so(anon: Persona) -> None:
    schemas = (await openapi(anon))["components"]["schemas"]
    for name in ("TargetCreate", "TargetUpdate", "HttpCheck", "TargetRegions", "IngestRequest"):
        assert schemas[name]["additionalProperties"] is False, name
    basic_auth = schemas["HttpCheck"]["properties"]["basic_auth"]
    (pair,) = [m for m in basic_auth["oneOf"] if m.get("type") == "array"]
    assert (pair["minItems"], pair["maxItems"], pair["items"]) == (2, 2, False)


async def test_a_numeric_from_is_refused_as_the_schema_says(owner: Persona) -> None:
    created = await owner.post(
        "/api/v1/targets", json={"name": "t", "check": {"type": "tcp", "host": "a.b", "port": 1}}
    )
    tid = created.json()["id"]
    for name in ("from", "to"):
        resp = await owner.get(f"/api/v1/targets/{tid}/results?{name}=1700000000")
        assert_error(resp, 400, "INVALID_QUERY_PARAM", f"/{name}")


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/api/v1/targets", "GET, OPTIONS, POST"),
        ("/api/v1/targets/{id}", "DELETE, GET, OPTIONS, PATCH"),
        ("/api/v1/targets/{id}/regions", "GET, OPTIONS, PUT"),
        ("/operator/regions", "GET, OPTIONS, POST"),
        ("/operator/agents/{id}", "DELETE, GET, OPTIONS, PATCH"),
    ],
)
async def test_options_and_405_answers_allow_every_method_of_the_route(
    owner: Persona, operator: Persona, path: str, allowed: str
) -> None:
    who = operator if path.startswith("/operator") else owner
    url = path.replace("{id}", "01a24988-a13d-7770-b53a-59b7a91732f9")
    options = await who.request("OPTIONS", url)
    assert options.status_code == 204, options.text
    assert options.headers["allow"] == allowed
    refused = await who.request("TRACE", url)
    assert refused.status_code == 405
    assert sorted(refused.headers["allow"].split(", ")) == allowed.split(", ")
