"""Request bodies decoded strictly, and every decoding failure as the envelope's 400.

``decode_body`` decodes JSON into a route's body type (no "60" -> 60 coercion) and names the exact
field of a problem as a JSON pointer with a stable code; ``decode_error_to_api`` turns msgspec's
messages into that answer. A body nested deeper than the decoder can follow (``[[[[…]]]]`` ten
thousand deep) is ``INVALID_JSON`` like any other undecodable body, never a ``RecursionError``
500: ``too_deep`` tells the exception handler so when Litestar's own decoding hit the limit.
Nothing here recurses over a decoded value (``find_nul`` walks it with an explicit stack).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from control_plane.core.errors import ApiError

# The message of a body nested deeper than msgspec (bounded by Python's recursion limit, about
# 1,000 levels minus the stack in use) can decode.
TOO_DEEP = "request body is not valid JSON: nested too deeply"


def too_deep_error() -> ApiError:
    return ApiError(400, "INVALID_JSON", TOO_DEEP)


def too_deep(body: Any) -> bool:
    """Whether ``body`` (the raw request body) is JSON nested deeper than msgspec can decode."""
    if not isinstance(body, bytes | bytearray | memoryview):
        return False
    try:
        msgspec.json.decode(body)
    except RecursionError:
        return True
    except Exception:
        return False
    return False


# msgspec reports locations as ``$.check.port`` or ``$.tags[2]``; we answer with a JSON pointer.
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")


def msgspec_path_to_pointer(path: str) -> str:
    parts = []
    for m in _PATH_PART.finditer(path):
        name, index = m.group(1), m.group(2)
        if name is not None:
            parts.append(_escape(name))
        elif index is not None:
            parts.append(index)
    return "/" + "/".join(parts) if parts else ""


# msgspec's names for JSON types, as a user reads them.
_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
    "object": "an object",
    "array": "an array",
    "null": "null",
}
_EXPECTED = re.compile(r"^Expected `(?P<want>[^`]+)`, got `(?P<got>[^`]+)`$")
_INVALID = re.compile(r"^Invalid (?:enum )?value (?P<value>.+)$")


def _words(types: str) -> str:
    return " or ".join(_TYPE_WORDS.get(t.strip(), f"`{t.strip()}`") for t in types.split("|"))


def humanize(
    message: str, field: str | None, choices: Mapping[str, Sequence[str]] | None = None
) -> str:
    """msgspec's text for a wrong type or value, as a sentence naming the field as the client
    wrote it (``check.port must be an integer, got a string``) and, where ``choices`` lists them
    for the field, what it may be."""
    where = (field or "").strip("/").replace("/", ".").replace("~1", "/").replace("~0", "~")
    where = where or "the body"
    expected = _EXPECTED.match(message)
    if expected:
        return f"{where} must be {_words(expected['want'])}, got {_words(expected['got'])}"
    invalid = _INVALID.match(message)
    if invalid:
        allowed = (choices or {}).get(field or "")
        text = f"{where}: {invalid['value']} is not allowed"
        return f"{text}; expected one of {', '.join(allowed)}" if allowed else text
    return f"{where}: {message[:1].lower()}{message[1:]}" if field else message


def decode_error_to_api(
    message: str,
    malformed: bool = False,
    field_codes: Mapping[str, str] | None = None,
    choices: Mapping[str, Sequence[str]] | None = None,
) -> ApiError:
    """Map a msgspec decode/validation message to the envelope's code and field.

    Unknown and missing fields are always ``UNKNOWN_FIELD`` / ``MISSING_FIELD``; any other wrong
    type or value takes the code ``field_codes`` gives its pointer (or the nearest parent's), else
    ``VALIDATION_ERROR``, with a message in words (``humanize``).
    """
    if malformed:
        return ApiError(400, "INVALID_JSON", f"request body is not valid JSON: {message}")
    field = None
    m = _AT.search(message)
    if m:
        field = msgspec_path_to_pointer(m.group("path")) or None
        message = message[: m.start()]
    unknown = re.match(r"Object contains unknown field `([^`]+)`", message)
    if unknown:
        name = unknown.group(1)
        field = f"{field or ''}/{_escape(name)}"
        return ApiError(400, "UNKNOWN_FIELD", f"unknown field '{name}'", field)
    missing = re.match(r"Object missing required field `([^`]+)`", message)
    if missing:
        name = missing.group(1)
        field = f"{field or ''}/{_escape(name)}"
        return ApiError(400, "MISSING_FIELD", f"required field '{name}' is missing", field)
    return ApiError(400, field_code(field, field_codes), humanize(message, field, choices), field)


def field_code(field: str | None, field_codes: Mapping[str, str] | None) -> str:
    """The code of the closest pointer in ``field_codes`` that is ``field`` or a parent of it."""
    pointer = field or ""
    while pointer and field_codes:
        if pointer in field_codes:
            return field_codes[pointer]
        pointer = pointer.rpartition("/")[0]
    return "VALIDATION_ERROR"


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def find_nul(value: Any) -> str | None:
    """The JSON pointer of the first string (value or key) holding a NUL, which no text column
    can store. Walks with an explicit stack, depth first in document order: any depth is fine."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, pointer = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return pointer
        elif isinstance(item, dict):
            children = []
            for key, child in item.items():
                here = f"{pointer}/{_escape(str(key))}"
                if "\x00" in str(key):
                    return here
                children.append((child, here))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend((item[i], f"{pointer}/{i}") for i in range(len(item) - 1, -1, -1))
    return None


def decode_body(body: bytes, type_: type[Any]) -> Any:
    """Decode a JSON request body into ``type_`` strictly (no "60" -> 60) or raise the 400.

    ``type_`` may declare ``__field_codes__`` (pointer -> code) to name the code of a wrong type
    or value under a pointer, and ``__field_choices__`` (pointer -> allowed values) to list what a
    field takes when a value is refused; see ``decode_error_to_api``.
    """
    codes: Mapping[str, str] = getattr(type_, "__field_codes__", None) or {}
    choices: Mapping[str, Sequence[str]] = getattr(type_, "__field_choices__", None) or {}
    if not body.strip():
        raise ApiError(400, "INVALID_JSON", "request body is empty; a JSON object is required")
    try:
        raw = msgspec.json.decode(body)
    except msgspec.ValidationError as exc:  # e.g. a number out of range
        raise decode_error_to_api(str(exc), field_codes=codes) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise decode_error_to_api(str(exc), malformed=True) from None
    except RecursionError:
        raise too_deep_error() from None
    # JSON can only carry a NUL escaped (a raw one is malformed): without the escape in the
    # body, there is nothing to look for.
    nul = find_nul(raw) if b"\\u0000" in body else None
    if nul is not None:
        raise ApiError(
            400, field_code(nul, codes), "strings must not contain NUL characters", nul or None
        )
    try:
        return msgspec.convert(raw, type_, strict=True)
    except msgspec.ValidationError as exc:
        raise decode_error_to_api(str(exc), field_codes=codes, choices=choices) from None
    except RecursionError:
        raise too_deep_error() from None
