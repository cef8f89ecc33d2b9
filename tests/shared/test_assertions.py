"""HTTP assertions, pure: the JSON path subset, the wire type and the validation rules.

No database, no HTTP (the runner's evaluation is in tests/probe_agent/test_http_assertions.py).
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from shared.assertions import (
    MAX_ASSERTIONS,
    compile_regex,
    parse_json_path,
    resolve_json_path,
)
from shared.checks import CheckSpec, HttpCheck
from shared.validation import SpecError, validate_check


def http(*assertions: dict[str, Any]) -> CheckSpec:
    raw = {"type": "http", "url": "https://example.com/", "assertions": list(assertions)}
    result: CheckSpec = msgspec.convert(raw, CheckSpec)
    return result


def error_of(*assertions: dict[str, Any]) -> tuple[str, str | None, str]:
    with pytest.raises(SpecError) as info:
        validate_check(http(*assertions))
    return info.value.code, info.value.field, info.value.message


def a(type_: str, operator: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": type_, "operator": operator, "value": value, **extra}


# -- JSON path -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("$", ()),
        ("$.status", ("status",)),
        ("$.data.status", ("data", "status")),
        ("$.items[0].name", ("items", 0, "name")),
        ("$.items[-1]", ("items", -1)),
        ("$[2]", (2,)),
        ("$['key with space']", ("key with space",)),
        ('$["a.b"]["c"]', ("a.b", "c")),
        ("$['it\\'s']", ("it's",)),
        ("$.snake_case.kebab-case.x1", ("snake_case", "kebab-case", "x1")),
        ("$.données", ("données",)),
        ("$[ 3 ]", (3,)),
    ],
)
def test_json_path_subset(path: str, steps: tuple[Any, ...]) -> None:
    assert parse_json_path(path) == steps


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("status", "must start with '$'"),
        ("", "must start with '$'"),
        ("$..status", "recursive descent"),
        ("$.items[*]", "wildcards"),
        ("$.*", "wildcards"),
        ("$.items[?(@.id == 7)]", "no slices or filters"),
        ("$.items[0:2]", "no slices or filters"),
        ("$.", "member name"),
        ("$.1abc", "member name"),
        ("$['unterminated]", "unsupported bracket"),
        ("$status", "unexpected 's'"),
        ("$." + "a" * 1000, "longer than 1000"),
    ],
)
def test_json_path_outside_the_subset_is_refused(path: str, why: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_json_path(path)
    assert why in str(info.value)


DOC = {"a": {"b": [10, {"c": None}]}, "k k": 1}


@pytest.mark.parametrize(
    ("path", "found", "value"),
    [
        ("$", True, DOC),
        ("$.a.b[0]", True, 10),
        ("$.a.b[-1].c", True, None),
        ("$['k k']", True, 1),
        ("$.a.b[2]", False, None),
        ("$.a.b[-3]", False, None),
        ("$.a.x", False, None),
        ("$.a.b.c", False, None),  # a list has no members
        ("$.a[0]", False, None),  # an object has no indexes
        ("$['k k'].z", False, None),  # a number has no members
    ],
)
def test_resolve_json_path(path: str, found: bool, value: Any) -> None:
    assert resolve_json_path(DOC, parse_json_path(path)) == (found, value)


def test_regex_is_re2() -> None:
    assert compile_regex(r"v\d+\.\d+").search("version v2.14 ok") is not None
    for bad in (r"(a)\1", r"(?=x)", "[", "x" * 1001):
        with pytest.raises(ValueError):
            compile_regex(bad)


# -- the wire type -------------------------------------------------------------------------------


def test_reference_assertions_decode_as_written() -> None:
    """The primary reference's own example: string values for numbers included."""
    check = http(
        a("status_code", "equals", "200"),
        a("response_time", "less_than", "500"),
        a("json_path", "equals", "ok", path="$.data.status"),
        a("header", "contains", "json", name="content-type"),
    )
    validate_check(check)
    assert isinstance(check, HttpCheck)
    assert msgspec.to_builtins(check.assertions[0]) == {
        "type": "status_code",
        "operator": "equals",
        "value": "200",
        "path": None,
        "name": None,
    }


@pytest.mark.parametrize(
    "raw",
    [
        a("status_code", "equals", None),
        a("status_code", "equals", [200]),
        a("cookie", "equals", "x"),
        a("status_code", "approximately", 200),
        {"type": "status_code", "operator": "equals"},
        {**a("status_code", "equals", 200), "extra": 1},
    ],
)
def test_malformed_assertions_do_not_decode(raw: dict[str, Any]) -> None:
    with pytest.raises(msgspec.ValidationError):
        http(raw)


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "assertion",
    [
        a("status_code", "equals", 200),
        a("status_code", "not_equals", "503"),
        a("status_code", "greater_than", 199),
        a("status_code", "less_than", " 400 "),
        a("status_code", "equals", 200.0),
        a("response_time", "less_than", 500),
        a("response_time", "greater_than", "0.5"),
        a("json_path", "equals", "ok", path="$.status"),
        a("json_path", "not_equals", 3, path="$.count"),
        a("json_path", "contains", True, path="$.flags"),
        a("json_path", "equals", "", path="$"),
        a("header", "equals", "no-store", name="Cache-Control"),
        a("header", "not_equals", "", name="x-empty"),
        a("header", "contains", 42, name="content-length"),
        a("body", "contains", "ok"),
        a("body", "not_contains", "error"),
        a("body", "regex", r"(?i)^status:\s+(ok|up)$"),
    ],
)
def test_valid_assertions(assertion: dict[str, Any]) -> None:
    validate_check(http(assertion))


INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    ("status contains", a("status_code", "contains", "20"), "/operator", "takes the operators"),
    ("status regex", a("status_code", "regex", "2.."), "/operator", "takes the operators"),
    ("time equals", a("response_time", "equals", 5), "/operator", "less_than, greater_than"),
    ("path regex", a("json_path", "regex", "x", path="$.a"), "/operator", "takes the operators"),
    ("path gt", a("json_path", "greater_than", 1, path="$.a"), "/operator", "takes"),
    ("header regex", a("header", "regex", "x", name="X-A"), "/operator", "takes the operators"),
    ("body equals", a("body", "equals", "x"), "/operator", "contains, not_contains, regex"),
    ("no path", a("json_path", "equals", "x"), "/path", 'needs a "path"'),
    ("wildcard path", a("json_path", "equals", "x", path="$.a[*]"), "/path", "wildcards"),
    ("filter path", a("json_path", "equals", "x", path="$[?(@.a)]"), "/path", "filters"),
    ("relative path", a("json_path", "equals", "x", path="a.b"), "/path", "start with '$'"),
    ("path on header", a("header", "equals", "x", name="X-A", path="$"), "/path", "only applies"),
    ("no name", a("header", "equals", "x"), "/name", 'needs the header\'s "name"'),
    ("bad name", a("header", "equals", "x", name="X A"), "/name", "not a valid token"),
    ("name on body", a("body", "contains", "x", name="X-A"), "/name", "only applies"),
    ("status text", a("status_code", "equals", "ok"), "/value", "whole number"),
    ("status fraction", a("status_code", "equals", "200.5"), "/value", "whole number"),
    ("status bool", a("status_code", "equals", True), "/value", "whole number"),
    ("status negative", a("status_code", "greater_than", -1), "/value", "whole number"),
    ("time text", a("response_time", "less_than", "fast"), "/value", "a number >= 0"),
    ("time nan", a("response_time", "less_than", "nan"), "/value", "a number >= 0"),
    ("time inf", a("response_time", "less_than", "inf"), "/value", "a number >= 0"),
    ("time negative", a("response_time", "greater_than", -5), "/value", "a number >= 0"),
    ("bad regex", a("body", "regex", "(unclosed"), "/value", "does not compile"),
    ("lookahead", a("body", "regex", "(?=x)y"), "/value", "does not compile"),
    ("backreference", a("body", "regex", r"(a)\1"), "/value", "does not compile"),
    ("long regex", a("body", "regex", "x" * 1001), "/value", "longer than 1000"),
    ("regex number", a("body", "regex", 5), "/value", "must be a string"),
    ("empty contains", a("body", "contains", ""), "/value", "non-empty"),
    ("empty not_contains", a("body", "not_contains", ""), "/value", "non-empty"),
    ("huge value", a("body", "contains", "x" * 5000), "/value", "longer than 4096"),
]


@pytest.mark.parametrize(
    ("assertion", "pointer", "says"),
    [pytest.param(x, p, s, id=name) for name, x, p, s in INVALID],
)
def test_invalid_assertion_code_pointer_and_message(
    assertion: dict[str, Any], pointer: str, says: str
) -> None:
    ok = a("status_code", "equals", 200)
    code, field, message = error_of(ok, assertion)
    assert code == "INVALID_ASSERTION"
    assert field == f"/assertions/1{pointer}"
    assert message.startswith("assertion 1: ")
    assert says in message


def test_at_most_twenty_assertions() -> None:
    ok = a("status_code", "equals", 200)
    validate_check(http(*[ok] * MAX_ASSERTIONS))
    assert error_of(*[ok] * (MAX_ASSERTIONS + 1))[:2] == ("INVALID_ASSERTION", "/assertions")
