"""HTTP assertions, the parts both sides need: the wire type, which operators each type takes,
how a value is read, the JSON path subset and the regular expressions (RE2: linear time, whatever
the pattern).

The control plane validates with these on write (``shared.checks.http``); the agent evaluates with
the same functions (``probe_agent.checks.assertions``), so a path or pattern it accepts is one the
agent can run. This module imports nothing from ``shared.checks``: the http kind builds on it.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any, Literal

import msgspec
import re2

AssertionType = Literal["status_code", "response_time", "json_path", "header", "body"]
AssertionOperator = Literal[
    "equals", "not_equals", "greater_than", "less_than", "contains", "not_contains", "regex"
]


class Assertion(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One check on an HTTP response, e.g. ``{"type": "json_path", "path": "$.status",
    "operator": "equals", "value": "ok"}``. The operators each type takes, and what ``value``
    must be, are below (``OPERATORS``); ``value`` is kept as written ("200" or 200)."""

    type: AssertionType
    operator: AssertionOperator
    value: str | int | float | bool
    # json_path only: where in the JSON body ($, $.a.b, $.a[0].b, $['key with space']).
    path: str | None = None
    # header only: the response header's name (case-insensitive).
    name: str | None = None


MAX_ASSERTIONS = 20
MAX_PATTERN_LEN = 1000
MAX_PATH_LEN = 1000
MAX_VALUE_LEN = 4096

OPERATORS: dict[str, tuple[str, ...]] = {
    "status_code": ("equals", "not_equals", "greater_than", "less_than"),
    "response_time": ("less_than", "greater_than"),
    "json_path": ("equals", "not_equals", "contains"),
    "header": ("equals", "not_equals", "contains"),
    "body": ("contains", "not_contains", "regex"),
}
# Types whose value is a number (status code, milliseconds); the others compare text.
NUMERIC_TYPES = frozenset({"status_code", "response_time"})


def assertion_number(a: Assertion) -> int | float | None:
    """The numeric value of a status_code / response_time assertion ("200" and 200 alike), or
    None when it is not one (a status code must be a whole number, a time finite and >= 0)."""
    value = a.value
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            number: float = float(value.strip())
        except ValueError:
            return None
    else:
        number = value
    if not math.isfinite(number) or number < 0:
        return None
    if a.type == "status_code":
        return int(number) if number == int(number) else None
    return int(number) if number == int(number) else number


def render(value: Any) -> str:
    """A JSON value as text: a string as itself, anything else as compact JSON (``true``, ``1``,
    ``null``, ``[1,2]``)."""
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


def expected_text(a: Assertion) -> str:
    """The value a text assertion (json_path, header, body) compares with."""
    return render(a.value)


# JSON path: ``$`` then any of ``.name``, ``[0]`` (negative counts from the end), ``['name']``
# or ``["name"]`` (backslash escapes the quote). No wildcards, recursion, slices or filters.
_NAME = re.compile(r"[^\W\d][\w-]*")
_INDEX = re.compile(r"\[\s*(-?\d{1,9})\s*\]")
_QUOTED = re.compile(r"""\[\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*\]""")
_ESCAPE = re.compile(r"\\(.)")

PathStep = str | int


@functools.lru_cache(maxsize=1024)
def parse_json_path(path: str) -> tuple[PathStep, ...]:
    """The steps of ``path``; ``ValueError`` with a reason when it is outside the subset."""
    if len(path) > MAX_PATH_LEN:
        raise ValueError(f"longer than {MAX_PATH_LEN} characters")
    if not path.startswith("$"):
        raise ValueError("must start with '$' (e.g. $.data.status)")
    steps: list[PathStep] = []
    i = 1
    while i < len(path):
        if path.startswith("..", i):
            raise ValueError("recursive descent '..' is not supported")
        if path.startswith((".*", "[*"), i):
            raise ValueError("wildcards are not supported")
        if path[i] == ".":
            m = _NAME.match(path, i + 1)
            if m is None:
                raise ValueError(
                    f"expected a member name after '.' at position {i}; use ['...'] for other names"
                )
            steps.append(m.group())
        elif path[i] == "[":
            m = _INDEX.match(path, i)
            if m is not None:
                steps.append(int(m.group(1)))
            else:
                m = _QUOTED.match(path, i)
                if m is None:
                    raise ValueError(
                        f"unsupported bracket at position {i}: only [index] and ['name'] are "
                        "supported (no slices or filters)"
                    )
                quoted = m.group(1) if m.group(1) is not None else m.group(2)
                steps.append(_ESCAPE.sub(r"\1", quoted))
        else:
            raise ValueError(f"unexpected {path[i]!r} at position {i}")
        i = m.end()
    return tuple(steps)


_NOT_FOUND = object()


def resolve_json_path(doc: Any, steps: tuple[PathStep, ...]) -> tuple[bool, Any]:
    """(found, value) of ``steps`` in a decoded JSON document."""
    current = doc
    for step in steps:
        if isinstance(step, int):
            if not isinstance(current, list) or not -len(current) <= step < len(current):
                return False, None
            current = current[step]
        else:
            if not isinstance(current, dict):
                return False, None
            current = current.get(step, _NOT_FOUND)
            if current is _NOT_FOUND:
                return False, None
    return True, current


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False  # a bad pattern is reported to the user, not logged by RE2
    return options


_RE2_OPTIONS = _re2_options()


@functools.lru_cache(maxsize=1024)
def compile_regex(pattern: str) -> Any:
    """An RE2 pattern (Python syntax without backreferences and lookaround); ``ValueError``
    with RE2's reason when it does not compile."""
    if len(pattern) > MAX_PATTERN_LEN:
        raise ValueError(f"longer than {MAX_PATTERN_LEN} characters")
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", errors="replace")
        raise ValueError(f"does not compile ({reason})") from None
