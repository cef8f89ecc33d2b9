"""Every free-form field of a check spec has a size limit with a code, and credentials that
could never be sent are refused at create (not left to fail every check)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.checks.http import (
    MAX_BODY_LEN,
    MAX_CREDENTIAL_LEN,
    MAX_EXPECTED_BODY_LEN,
    MAX_HEADER_NAME_LEN,
    MAX_HEADER_VALUE_LEN,
    MAX_HEADERS,
    MAX_ONE_OF,
)
from tests.conftest import Persona, assert_error

API = "/api/v1/targets"
URL = "https://example.com/health"


def http(**fields: Any) -> dict[str, Any]:
    return {"name": "t", "check": {"type": "http", "url": URL, **fields}}


OVER: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "header count",
        {"headers": {f"X-H{i}": "v" for i in range(MAX_HEADERS + 1)}},
        "INVALID_HEADER",
        "/check/headers",
    ),
    (
        "header name",
        {"headers": {"X" * (MAX_HEADER_NAME_LEN + 1): "v"}},
        "INVALID_HEADER",
        f"/check/headers/{'X' * (MAX_HEADER_NAME_LEN + 1)}",
    ),
    (
        "header value",
        {"headers": {"X-Big": "v" * (MAX_HEADER_VALUE_LEN + 1)}},
        "INVALID_HEADER",
        "/check/headers/X-Big",
    ),
    (
        "secret header value",
        {
            "headers": {"X-Key": "v" * (MAX_HEADER_VALUE_LEN + 1)},
            "secret_headers": ["X-Key"],
        },
        "INVALID_HEADER",
        "/check/headers/X-Key",
    ),
    (
        "body",
        {"method": "POST", "body": "b" * (MAX_BODY_LEN + 1)},
        "VALIDATION_ERROR",
        "/check/body",
    ),
    (
        "expected_body_contains",
        {"expected_body_contains": "e" * (MAX_EXPECTED_BODY_LEN + 1)},
        "VALIDATION_ERROR",
        "/check/expected_body_contains",
    ),
    (
        "one_of",
        {"expected_status": {"kind": "one_of", "value": [200] * (MAX_ONE_OF + 1)}},
        "INVALID_STATUS_RANGE",
        "/check/expected_status/value",
    ),
    (
        "bearer_token",
        {"bearer_token": "t" * (MAX_CREDENTIAL_LEN + 1)},
        "VALIDATION_ERROR",
        "/check/bearer_token",
    ),
    (
        "basic_auth password",
        {"basic_auth": ["user", "p" * (MAX_CREDENTIAL_LEN + 1)]},
        "VALIDATION_ERROR",
        "/check/basic_auth/1",
    ),
]


@pytest.mark.parametrize(("label", "fields", "code", "field"), OVER, ids=[o[0] for o in OVER])
async def test_a_field_over_its_limit_is_refused_with_its_code(
    owner: Persona, label: str, fields: dict[str, Any], code: str, field: str
) -> None:
    assert_error(await owner.post(API, json=http(**fields)), 400, code, field)


async def test_fields_at_their_limits_are_accepted(owner: Persona) -> None:
    body = http(
        method="POST",
        headers={
            **{f"X-H{i}": "v" for i in range(MAX_HEADERS - 1)},
            "X" * MAX_HEADER_NAME_LEN: "v" * MAX_HEADER_VALUE_LEN,
        },
        body="b" * MAX_BODY_LEN,
        expected_body_contains="e" * MAX_EXPECTED_BODY_LEN,
        expected_status={"kind": "one_of", "value": list(range(200, 200 + MAX_ONE_OF))},
        bearer_token="t" * MAX_CREDENTIAL_LEN,
    )
    resp = await owner.post(API, json=body)
    assert resp.status_code == 201, resp.text


NEVER_WORK: list[tuple[str, dict[str, Any], str]] = [
    ("bearer token with LF", {"bearer_token": "abc\ndef"}, "/check/bearer_token"),
    ("bearer token with CR", {"bearer_token": "abc\rdef"}, "/check/bearer_token"),
    ("basic auth user with a colon", {"basic_auth": ["us:er", "pw"]}, "/check/basic_auth/0"),
    (
        "basic auth and bearer token",
        {"basic_auth": ["user", "pw"], "bearer_token": "tok"},
        "/check/bearer_token",
    ),
]


@pytest.mark.parametrize(("label", "fields", "field"), NEVER_WORK, ids=[n[0] for n in NEVER_WORK])
async def test_credentials_that_can_never_work_are_refused_at_create(
    owner: Persona, label: str, fields: dict[str, Any], field: str
) -> None:
    assert_error(await owner.post(API, json=http(**fields)), 400, "VALIDATION_ERROR", field)
    test = await owner.post(f"{API}/test", json={"check": http(**fields)["check"]})
    assert_error(test, 400, "VALIDATION_ERROR", field)


@pytest.mark.parametrize("secret", [True, False])
@pytest.mark.parametrize("brk", ["\r", "\n", "\r\n"])
async def test_a_header_value_with_a_line_break_is_refused(
    owner: Persona, secret: bool, brk: str
) -> None:
    fields: dict[str, Any] = {"headers": {"X-Key": f"a{brk}Injected: yes"}}
    if secret:
        fields["secret_headers"] = ["X-Key"]
    assert_error(
        await owner.post(API, json=http(**fields)), 400, "INVALID_HEADER", "/check/headers/X-Key"
    )
