"""Evaluating a check's HTTP assertions against the response the runner read.

Each assertion gives one entry of ``details["assertions"]``: ``{type, operator, path?/name?,
expected, actual, passed}``. ``expected`` is the number (status_code, response_time) or text
the assertion compares with; ``actual`` is what the response had: the status code, the
response time in ms, the header's value, the JSON value rendered as text (``"ok"`` → ``ok``,
``true``, ``1``, ``null``, compact JSON for arrays and objects) or the part of the body around
the first match (else its start). ``actual`` is null when there was nothing to compare: the
header is absent, the path is not in the document, the body is not JSON; such an assertion
fails, whatever its operator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from shared.assertions import (
    assertion_number,
    compile_regex,
    expected_text,
    parse_json_path,
    render,
    resolve_json_path,
)
from shared.checks import Assertion

# Longest text kept as an entry's ``expected`` / ``actual``.
MAX_SHOWN = 1000
# Body excerpt: this many characters before the match, this many in all.
_EXCERPT_BEFORE = 40
_EXCERPT_LEN = 200


@dataclass
class Response:
    """What the assertions look at. ``header(name)`` gives every value of a header (any case)."""

    status: int
    elapsed_ms: float
    header: Callable[[str], Sequence[str]]
    # The decoded body (up to the body limit); None when no assertion needs it.
    text: str | None
    truncated_at: int | None = None


@dataclass
class Evaluated:
    entry: dict[str, Any]
    # Why ``actual`` is null, for the failure message.
    missing: str | None = None

    @property
    def passed(self) -> bool:
        return bool(self.entry["passed"])


def _clip(text: str, limit: int = MAX_SHOWN) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _excerpt(text: str, at: int) -> str:
    start = max(0, at - _EXCERPT_BEFORE)
    piece = text[start : start + _EXCERPT_LEN]
    return ("…" if start else "") + piece + ("…" if start + _EXCERPT_LEN < len(text) else "")


def _compare_numbers(operator: str, actual: float, expected: float) -> bool:
    if operator == "equals":
        return actual == expected
    if operator == "not_equals":
        return actual != expected
    if operator == "greater_than":
        return actual > expected
    return actual < expected  # less_than


def _json_equals(actual: Any, expected: str) -> bool:
    if render(actual) == expected:
        return True
    if isinstance(actual, int | float) and not isinstance(actual, bool):
        try:
            return float(expected) == actual  # 1 equals "1.0", 1.5 equals "1.50"
        except ValueError:
            return False
    return False


def _json_contains(actual: Any, expected: str) -> bool:
    if isinstance(actual, str):
        return expected in actual
    if isinstance(actual, list):
        return any(_json_equals(item, expected) for item in actual)
    if isinstance(actual, dict):
        return expected in actual
    return expected in render(actual)


class _Document:
    """The body parsed as JSON once, on first use."""

    def __init__(self, response: Response) -> None:
        self._response = response
        self._parsed = False
        self._value: Any = None
        self.error: str | None = None

    def value(self) -> Any:
        if not self._parsed:
            self._parsed = True
            try:
                self._value = msgspec.json.decode(self._response.text or "")
            except msgspec.DecodeError:
                cut = self._response.truncated_at
                self.error = "body is not JSON" + (
                    f" (read only its first {cut} bytes)" if cut is not None else ""
                )
        return self._value


def _evaluate(a: Assertion, response: Response, doc: _Document) -> Evaluated:
    entry: dict[str, Any] = {"type": a.type, "operator": a.operator}
    if a.path is not None:
        entry["path"] = a.path
    if a.name is not None:
        entry["name"] = a.name
    missing: str | None = None
    actual: Any = None
    passed = False
    number = assertion_number(a)
    if a.type in ("status_code", "response_time") and number is not None:
        entry["expected"] = number
        actual = response.status if a.type == "status_code" else response.elapsed_ms
        passed = _compare_numbers(a.operator, actual, number)
    else:
        expected = expected_text(a)
        entry["expected"] = _clip(expected)
        if a.type == "header":
            values = list(response.header(a.name or ""))
            if not values:
                missing = "no such header"
            else:
                actual = ", ".join(values)
                if a.operator == "contains":
                    passed = expected in actual
                else:
                    passed = (actual == expected) == (a.operator == "equals")
        elif a.type == "json_path":
            document = doc.value()
            found, value = False, None
            if doc.error is not None:
                missing = doc.error
            else:
                found, value = resolve_json_path(document, parse_json_path(a.path or "$"))
                if not found:
                    missing = "path not found"
            if found:
                actual = render(value)
                if a.operator == "contains":
                    passed = _json_contains(value, expected)
                else:
                    passed = _json_equals(value, expected) == (a.operator == "equals")
        elif a.type == "body":
            text = response.text or ""
            if a.operator == "regex":
                match = compile_regex(expected).search(text)
                at = match.start() if match is not None else -1
            else:
                at = text.find(expected)
            passed = (at >= 0) == (a.operator != "not_contains")
            actual = _excerpt(text, max(at, 0))
        else:  # a numeric type with a value validation would have refused
            missing = f"value {a.value!r} is not a number"
    if isinstance(actual, str):
        actual = _clip(actual)
    entry["actual"] = actual
    entry["passed"] = passed
    return Evaluated(entry, missing)


def needs_body(assertions: Sequence[Assertion]) -> bool:
    return any(a.type in ("json_path", "body") for a in assertions)


def evaluate(assertions: Sequence[Assertion], response: Response) -> list[Evaluated]:
    doc = _Document(response)
    return [_evaluate(a, response, doc) for a in assertions]


def failure_message(failed: Evaluated) -> str:
    """``assertion failed: json_path $.status equals "ok" (actual "degraded")``."""
    e = failed.entry
    subject = " ".join(str(part) for part in (e["type"], e.get("path"), e.get("name")) if part)
    expected = msgspec.json.encode(e["expected"]).decode()
    if e["actual"] is None:
        seen = failed.missing or "actual null"
    else:
        seen = "actual " + _clip(msgspec.json.encode(e["actual"]).decode(), 200)
    return f"assertion failed: {subject} {e['operator']} {_clip(expected, 200)} ({seen})"
