"""HTTP assertions through /api/v1/targets: 400 INVALID_ASSERTION with a pointer, round trips."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Persona, assert_error
from tests.control_plane.targets.test_targets_crud import create, http_target

API = "/api/v1/targets"

ASSERTIONS: list[dict[str, Any]] = [
    {"type": "status_code", "operator": "equals", "value": "200"},
    {"type": "response_time", "operator": "less_than", "value": 500},
    {"type": "json_path", "path": "$.data.status", "operator": "equals", "value": "ok"},
    {"type": "header", "name": "content-type", "operator": "contains", "value": "json"},
    {"type": "body", "operator": "regex", "value": '"version":\\s*"\\d+'},
]


def full(assertion: dict[str, Any]) -> dict[str, Any]:
    """An assertion as reads show it: ``path`` and ``name`` always present."""
    return {"path": None, "name": None, **assertion}


def ok(**extra: Any) -> dict[str, Any]:
    return {"type": "status_code", "operator": "equals", "value": 200, **extra}


# (assertions, field): a wrong type or value is INVALID_ASSERTION at its own pointer.
INVALID: list[tuple[str, list[dict[str, Any]], str]] = [
    ("unknown type", [ok(type="cookie")], "/check/assertions/0/type"),
    ("unknown operator", [ok(operator="about")], "/check/assertions/0/operator"),
    ("operator of another type", [ok(operator="contains")], "/check/assertions/0/operator"),
    ("value null", [ok(value=None)], "/check/assertions/0/value"),
    ("value object", [ok(value={"a": 1})], "/check/assertions/0/value"),
    ("non-numeric status", [ok(), ok(value="two hundred")], "/check/assertions/1/value"),
    (
        "json_path without path",
        [{"type": "json_path", "operator": "equals", "value": "x"}],
        "/check/assertions/0/path",
    ),
    (
        "unsupported json path",
        [{"type": "json_path", "path": "$..id", "operator": "equals", "value": "x"}],
        "/check/assertions/0/path",
    ),
    (
        "header without name",
        [{"type": "header", "operator": "equals", "value": "x"}],
        "/check/assertions/0/name",
    ),
    (
        "header name not a token",
        [{"type": "header", "name": "a b", "operator": "equals", "value": "x"}],
        "/check/assertions/0/name",
    ),
    (
        "bad regex",
        [{"type": "body", "operator": "regex", "value": "(open"}],
        "/check/assertions/0/value",
    ),
    ("too many", [ok()] * 21, "/check/assertions"),
    ("not a list", {"type": "status_code"}, "/check/assertions"),  # type: ignore[list-item]
]


@pytest.mark.parametrize(
    ("assertions", "field"), [pytest.param(a, f, id=name) for name, a, f in INVALID]
)
async def test_create_rejects_invalid_assertions(
    owner: Persona, assertions: list[dict[str, Any]], field: str
) -> None:
    resp = await owner.post(API, json=http_target(assertions=assertions))
    err = assert_error(resp, 400, "INVALID_ASSERTION", field)
    assert err["field"] == field
    assert (await owner.get(API)).json()["total"] == 0


async def test_unknown_assertion_field_stays_unknown_field(owner: Persona) -> None:
    resp = await owner.post(API, json=http_target(assertions=[ok(expected=200)]))
    assert_error(resp, 400, "UNKNOWN_FIELD", "/check/assertions/0/expected")


async def test_assertions_round_trip_on_get_as_written(owner: Persona) -> None:
    created = await create(owner, http_target(assertions=ASSERTIONS))
    assert created["check"]["assertions"] == [full(a) for a in ASSERTIONS]
    read = (await owner.get(f"{API}/{created['id']}")).json()
    assert read == created
    # "200" stays a string, 500 a number: the body sent back is the body received.
    assert read["check"]["assertions"][0]["value"] == "200"
    assert read["check"]["assertions"][1]["value"] == 500


async def test_patch_replaces_assertions_and_validates_them(owner: Persona) -> None:
    created = await create(owner, http_target())
    assert created["check"]["assertions"] == []
    url = f"{API}/{created['id']}"
    check = {**created["check"], "assertions": ASSERTIONS[2:3]}
    resp = await owner.patch(url, json={"check": check})
    assert resp.status_code == 200, resp.text
    assert resp.json()["check"]["assertions"] == [full(ASSERTIONS[2])]

    bad = {**check, "assertions": [{**ASSERTIONS[2], "path": "$.items[*].id"}]}
    err = assert_error(
        await owner.patch(url, json={"check": bad}),
        400,
        "INVALID_ASSERTION",
        "/check/assertions/0/path",
    )
    assert "wildcards are not supported" in err["message"]
    read = (await owner.get(url)).json()
    assert read["check"]["assertions"] == [full(ASSERTIONS[2])], "a rejected PATCH changes nothing"

    resp = await owner.patch(url, json={"check": {**check, "assertions": []}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["check"]["assertions"] == []


async def test_assertions_only_exist_on_http(owner: Persona) -> None:
    body = {
        "name": "db",
        "check": {"type": "tcp", "host": "db.example.com", "port": 5432, "assertions": []},
    }
    assert_error(await owner.post(API, json=body), 400, "UNKNOWN_FIELD", "/check/assertions")
