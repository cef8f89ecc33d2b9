"""HTTP assertions evaluated by the real runner against a real JSON server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from probe_agent.checks.http import HttpRunner
from shared.checks import Assertion, HttpCheck
from shared.protocol import CheckResult
from shared.validation import validate_check
from tests.probe_agent.helpers import make_lease

DOC = {
    "status": "ok",
    "data": {"count": 3, "ratio": 1.5, "live": True, "gone": None, "tags": ["a", "b"]},
    "items": [{"id": 7, "name": "first"}, {"id": 8, "name": "second"}],
    "key with space": "spaced",
}


class JsonServer:
    def __init__(self) -> None:
        self.server: TestServer | None = None
        self.slow_ms = 0

    def url(self, path: str) -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/json", self._json)
        app.router.add_get("/text", self._text)
        app.router.add_get("/slow", self._slow)
        app.router.add_get("/down", self._down)
        app.router.add_get("/big", self._big)
        app.router.add_get("/latin1", self._latin1)
        return app

    async def _latin1(self, request: web.Request) -> web.Response:
        return web.Response(
            body="état: opérationnel".encode("latin-1"),
            headers={"Content-Type": "text/plain; charset=iso-8859-1"},
        )

    async def _json(self, request: web.Request) -> web.Response:
        return web.json_response(DOC, headers={"X-Version": "2.4.1", "Cache-Control": "no-store"})

    async def _text(self, request: web.Request) -> web.Response:
        return web.Response(text="service build 1234 is healthy\n", content_type="text/plain")

    async def _slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(0.3)
        return web.json_response({"status": "ok"})

    async def _down(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "degraded"}, status=500)

    async def _big(self, request: web.Request) -> web.Response:
        return web.Response(
            body=b'{"pad": "' + b"a" * 4096 + b'"}', content_type="application/json"
        )


@pytest.fixture
async def server() -> AsyncIterator[JsonServer]:
    s = JsonServer()
    ts = TestServer(s.app(), host="127.0.0.1")
    await ts.start_server()
    s.server = ts
    try:
        yield s
    finally:
        await ts.close()


def spec(url: str, *assertions: dict[str, Any], **extra: Any) -> HttpCheck:
    """A validated check (the same validation the control plane runs on write)."""
    check = msgspec.convert({"url": url, "assertions": list(assertions), **extra}, HttpCheck)
    validate_check(check)
    return check


async def run(check: HttpCheck, runner: HttpRunner | None = None) -> CheckResult:
    if runner is not None:
        return await runner.run(check, make_lease(check))
    async with HttpRunner() as own:
        return await own.run(check, make_lease(check))


def a(type_: str, operator: str, value: Any, **extra: str) -> dict[str, Any]:
    return {"type": type_, "operator": operator, "value": value, **extra}


# (assertion, passes against /json)
CASES: list[tuple[dict[str, Any], bool]] = [
    (a("status_code", "equals", "200"), True),
    (a("status_code", "equals", 200), True),
    (a("status_code", "equals", 201), False),
    (a("status_code", "not_equals", "500"), True),
    (a("status_code", "not_equals", 200), False),
    (a("status_code", "greater_than", 199), True),
    (a("status_code", "greater_than", "200"), False),
    (a("status_code", "less_than", 300), True),
    (a("status_code", "less_than", 200), False),
    (a("response_time", "less_than", "10000"), True),
    (a("response_time", "less_than", 0), False),
    (a("response_time", "greater_than", 0), True),
    (a("response_time", "greater_than", 60000), False),
    (a("json_path", "equals", "ok", path="$.status"), True),
    (a("json_path", "equals", "degraded", path="$.status"), False),
    (a("json_path", "not_equals", "degraded", path="$.status"), True),
    (a("json_path", "not_equals", "ok", path="$.status"), False),
    (a("json_path", "equals", "3", path="$.data.count"), True),
    (a("json_path", "equals", 3, path="$.data.count"), True),
    (a("json_path", "equals", "3.0", path="$.data.count"), True),
    (a("json_path", "equals", "1.5", path="$.data.ratio"), True),
    (a("json_path", "equals", "true", path="$.data.live"), True),
    (a("json_path", "equals", True, path="$.data.live"), True),
    (a("json_path", "equals", "false", path="$.data.live"), False),
    (a("json_path", "equals", "null", path="$.data.gone"), True),
    (a("json_path", "equals", "second", path="$.items[1].name"), True),
    (a("json_path", "equals", "second", path="$.items[-1].name"), True),
    (a("json_path", "equals", "first", path="$.items[1].name"), False),
    (a("json_path", "equals", "spaced", path="$['key with space']"), True),
    (a("json_path", "equals", "7", path='$["items"][0]["id"]'), True),
    (a("json_path", "contains", "o", path="$.status"), True),
    (a("json_path", "contains", "x", path="$.status"), False),
    (a("json_path", "contains", "b", path="$.data.tags"), True),
    (a("json_path", "contains", "c", path="$.data.tags"), False),
    (a("json_path", "contains", "count", path="$.data"), True),
    (a("json_path", "contains", "nope", path="$.data"), False),
    (a("header", "equals", "2.4.1", name="X-Version"), True),
    (a("header", "equals", "2.4.1", name="x-version"), True),
    (a("header", "equals", "2.4", name="X-Version"), False),
    (a("header", "not_equals", "1.0.0", name="X-Version"), True),
    (a("header", "not_equals", "2.4.1", name="X-Version"), False),
    (a("header", "contains", "json", name="content-type"), True),
    (a("header", "contains", "xml", name="content-type"), False),
    (a("body", "contains", '"status": "ok"'), True),
    (a("body", "contains", "degraded"), False),
    (a("body", "not_contains", "degraded"), True),
    (a("body", "not_contains", "first"), False),
    (a("body", "regex", r'"id":\s*\d+'), True),
    (a("body", "regex", r"^\d+$"), False),
]


@pytest.mark.parametrize(("assertion", "passes"), CASES, ids=lambda c: json.dumps(c))
async def test_each_type_and_operator(
    server: JsonServer, assertion: dict[str, Any], passes: bool
) -> None:
    result = await run(spec(server.url("/json"), assertion))
    (entry,) = result.details["assertions"]
    assert entry["passed"] is passes, entry
    assert result.status == ("up" if passes else "down"), result.error
    assert result.error_code == (None if passes else "ASSERTION_FAILED")
    assert entry["type"] == assertion["type"]
    assert entry["operator"] == assertion["operator"]
    assert entry["actual"] is not None


async def test_every_assertion_is_stored_and_the_first_failure_named(server: JsonServer) -> None:
    result = await run(
        spec(
            server.url("/json"),
            a("status_code", "equals", "200"),
            a("json_path", "equals", "degraded", path="$.status"),
            a("header", "equals", "2.4.1", name="X-Version"),
            a("header", "contains", "x", name="X-Missing"),
        )
    )
    assert result.status == "down"
    assert result.status_code == 200
    assert result.error_code == "ASSERTION_FAILED"
    assert result.error == 'assertion failed: json_path $.status equals "degraded" (actual "ok")'
    status, path, header, missing = result.details["assertions"]
    assert status == {
        "type": "status_code",
        "operator": "equals",
        "expected": 200,
        "actual": 200,
        "passed": True,
    }
    assert path == {
        "type": "json_path",
        "operator": "equals",
        "path": "$.status",
        "expected": "degraded",
        "actual": "ok",
        "passed": False,
    }
    assert header == {
        "type": "header",
        "operator": "equals",
        "name": "X-Version",
        "expected": "2.4.1",
        "actual": "2.4.1",
        "passed": True,
    }
    assert missing["actual"] is None and missing["passed"] is False
    # The stored details survive the wire format the agent sends them in.
    wire = msgspec.json.decode(msgspec.json.encode(result), type=CheckResult)
    assert wire.details == result.details


async def test_all_passing_is_up_with_details(server: JsonServer) -> None:
    result = await run(
        spec(
            server.url("/json"),
            a("status_code", "less_than", 400),
            a("json_path", "equals", "ok", path="$.status"),
            a("body", "regex", "second"),
        )
    )
    assert result.status == "up" and result.error is None and result.error_code is None
    assert [e["passed"] for e in result.details["assertions"]] == [True, True, True]


@pytest.mark.parametrize(
    ("assertion", "why"),
    [
        (a("header", "equals", "x", name="X-Absent"), "no such header"),
        (a("header", "not_equals", "x", name="X-Absent"), "no such header"),
        (a("json_path", "equals", "ok", path="$.nope"), "path not found"),
        (a("json_path", "not_equals", "ok", path="$.items[5].name"), "path not found"),
        (a("json_path", "equals", "ok", path="$.status.deeper"), "path not found"),
        (a("json_path", "equals", "ok", path="$.items.name"), "path not found"),
    ],
)
async def test_missing_actual_fails_whatever_the_operator(
    server: JsonServer, assertion: dict[str, Any], why: str
) -> None:
    result = await run(spec(server.url("/json"), assertion))
    (entry,) = result.details["assertions"]
    assert entry["actual"] is None and entry["passed"] is False
    assert result.status == "down" and result.error_code == "ASSERTION_FAILED"
    assert result.error is not None and result.error.endswith(f"({why})"), result.error


async def test_body_that_is_not_json(server: JsonServer) -> None:
    result = await run(
        spec(server.url("/text"), a("json_path", "not_equals", "x", path="$.status"))
    )
    (entry,) = result.details["assertions"]
    assert entry == {
        "type": "json_path",
        "operator": "not_equals",
        "path": "$.status",
        "expected": "x",
        "actual": None,
        "passed": False,
    }
    assert result.error == 'assertion failed: json_path $.status not_equals "x" (body is not JSON)'


async def test_truncated_json_body_says_so(server: JsonServer) -> None:
    check = spec(server.url("/big"), a("json_path", "equals", "x", path="$.pad"))
    async with HttpRunner(body_limit=1024) as runner:
        result = await run(check, runner)
    assert result.details["body_truncated_at"] == 1024
    assert result.error is not None and "read only its first 1024 bytes" in result.error


async def test_body_is_decoded_by_its_charset(server: JsonServer) -> None:
    result = await run(
        spec(
            server.url("/latin1"),
            a("body", "contains", "opérationnel"),
            a("body", "regex", r"^état:"),
        )
    )
    assert result.status == "up", result.error
    assert result.details["assertions"][0]["actual"] == "état: opérationnel"


async def test_regex_matches_on_the_text_body_and_shows_where(server: JsonServer) -> None:
    result = await run(
        spec(
            server.url("/text"),
            a("body", "regex", r"build \d{4} is (healthy|ok)"),
            a("body", "regex", r"(?im)HEALTHY$"),
            a("body", "regex", r"build \d{5}"),
        )
    )
    first, second, third = result.details["assertions"]
    assert first["passed"] and first["actual"].startswith("service build 1234")
    assert second["passed"]  # flags and anchors (RE2: $ is the very end unless (?m))
    assert not third["passed"]
    assert result.error == (
        'assertion failed: body regex "build \\\\d{5}" (actual "service build 1234 is healthy\\n")'
    )


_CATASTROPHIC = """
import msgspec
from probe_agent.checks.assertions import Response, evaluate
from shared.checks import HttpCheck
from shared.validation import validate_check

check = msgspec.convert(
    {"url": "http://example.com/",
     "assertions": [{"type": "body", "operator": "regex", "value": "^(a+)+b"}]},
    HttpCheck,
)
validate_check(check)
response = Response(status=200, elapsed_ms=1.0, header=lambda _: (), text="a" * 100_000)
(result,) = evaluate(check.assertions, response)
print(result.entry["passed"])
"""


def test_a_catastrophic_pattern_runs_in_linear_time() -> None:
    """With Python's re, ^(a+)+b on 100 000 "a" backtracks for longer than anyone waits (24 "a"
    already take ~0.5 s) and holds the GIL meanwhile; RE2 answers at once. A child process lets
    the test fail instead of hang."""
    done = subprocess.run(
        [sys.executable, "-c", _CATASTROPHIC],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    assert done.stdout.strip() == "False"


async def test_response_time_greater_than_with_a_slow_handler(server: JsonServer) -> None:
    result = await run(
        spec(
            server.url("/slow"),
            a("response_time", "greater_than", 250),
            a("response_time", "less_than", "250"),
        )
    )
    slow, fast = result.details["assertions"]
    assert slow["passed"] is True and slow["expected"] == 250
    assert slow["actual"] >= 250
    assert slow["actual"] <= result.latency_ms
    assert fast["passed"] is False
    assert (
        result.error == f"assertion failed: response_time less_than 250 (actual {fast['actual']})"
    )


async def test_failed_status_keeps_its_verdict_and_still_reports_assertions(
    server: JsonServer,
) -> None:
    result = await run(
        spec(
            server.url("/down"),
            a("json_path", "equals", "ok", path="$.status"),
            a("status_code", "equals", 500),
        )
    )
    assert result.status == "down"
    assert result.error_code == "UNEXPECTED_STATUS"
    assert result.error == "expected status 200, got 500"
    path, status = result.details["assertions"]
    assert path["passed"] is False and path["actual"] == "degraded"
    assert status["passed"] is True


async def test_status_code_assertion_with_a_matching_expected_status(server: JsonServer) -> None:
    result = await run(
        spec(
            server.url("/down"),
            a("status_code", "greater_than", 499),
            a("json_path", "equals", "degraded", path="$.status"),
            expected_status={"kind": "range", "value": {"min": 200, "max": 599}},
        )
    )
    assert result.status == "up", result.error
    assert all(e["passed"] for e in result.details["assertions"])


async def test_no_assertions_no_details(server: JsonServer) -> None:
    result = await run(spec(server.url("/json")))
    assert result.status == "up"
    assert "assertions" not in result.details


def test_assertion_value_keeps_its_written_form() -> None:
    check = spec("http://example.com/", a("status_code", "equals", "200"))
    assert check.assertions == [Assertion(type="status_code", operator="equals", value="200")]
    again = msgspec.json.decode(msgspec.json.encode(check), type=HttpCheck)
    assert again.assertions[0].value == "200"
