"""One error envelope for every surface: ``{"error": {code, message, field, details, trace_id}}``.

Routes and services raise ``ApiError`` (or a subclass helper); ``exception_handlers()`` turns it,
Litestar's own HTTP errors, request-decoding failures and anything unexpected into the envelope.
A client mistake is never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import (
    ClientException,
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    SerializationException,
    ValidationException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.utils.scope.state import ScopeState
from psycopg import errors as pg

from control_plane.core.cache_control import cache_control_for
from shared.validation import SpecError

log = structlog.get_logger("vigil.errors")


class ApiError(Exception):
    """A failure with a stable, machine-readable code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details = details
        self.headers = headers or {}

    @classmethod
    def from_spec(cls, err: SpecError, prefix: str = "") -> ApiError:
        return cls(
            err.status,
            err.code,
            err.message,
            prefix + err.field if err.field else None,
            err.details,
        )


def not_found(code: str, what: str) -> ApiError:
    return ApiError(404, code, f"{what} not found")


def bad_request(code: str, message: str, field: str | None = None, **details: Any) -> ApiError:
    return ApiError(400, code, message, field, details or None)


class ErrorBody(msgspec.Struct):
    code: str
    message: str
    field: str | None = None
    details: dict[str, Any] | None = None
    trace_id: str | None = None


class ErrorEnvelope(msgspec.Struct):
    error: ErrorBody


def _trace_id(request: Request[Any, Any, Any]) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return str(value) if value else None


def error_response(
    request: Request[Any, Any, Any],
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[ErrorEnvelope]:
    body = ErrorEnvelope(ErrorBody(code, message, field, details, _trace_id(request)))
    headers = dict(headers or {})
    path = request.scope.get("path", "")
    if path.startswith("/api/v1/"):
        # Errors raised before routing (404/405) never reach the Cache-Control middleware.
        headers["Cache-Control"] = cache_control_for(request.scope.get("method", "GET"), path)
    return Response(body, status_code=status, headers=headers, media_type="application/json")


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


def find_nul(value: Any, pointer: str = "") -> str | None:
    """The JSON pointer of the first string (value or key) holding a NUL, which no text column
    can store."""
    if isinstance(value, str):
        return pointer if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{pointer}/{_escape(str(key))}"
            if "\x00" in str(key):
                return here
            found = find_nul(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = find_nul(item, f"{pointer}/{i}")
            if found is not None:
                return found
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
    nul = find_nul(raw)
    if nul is not None:
        raise ApiError(
            400, field_code(nul, codes), "strings must not contain NUL characters", nul or None
        )
    try:
        return msgspec.convert(raw, type_, strict=True)
    except msgspec.ValidationError as exc:
        raise decode_error_to_api(str(exc), field_codes=codes, choices=choices) from None


def _strict_body_error(request: Request[Any, Any, Any]) -> ApiError | None:
    """Litestar's own body decoding is lenient and drops nested paths from its messages; decode
    the already-read body strictly against the handler's ``data`` type to name the exact field."""
    handler = request.scope.get("route_handler")
    data_field = getattr(handler, "parsed_data_field", None)
    body = ScopeState.from_scope(request.scope).body
    if data_field is None or not isinstance(body, bytes):
        return None
    try:
        decode_body(body, data_field.annotation)
    except ApiError as err:
        return err
    except Exception:  # an annotation msgspec cannot convert to: keep Litestar's answer
        return None
    return None


def _handle_api_error(request: Request[Any, Any, Any], exc: ApiError) -> Response[ErrorEnvelope]:
    return error_response(
        request, exc.status, exc.code, exc.message, exc.field, exc.details, exc.headers
    )


def _handle_spec_error(request: Request[Any, Any, Any], exc: SpecError) -> Response[ErrorEnvelope]:
    return _handle_api_error(request, ApiError.from_spec(exc))


def _handle_validation(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[ErrorEnvelope]:
    # Litestar raises this for bodies, query and path parameters it decodes itself.
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", ""))
        source = item.get("source")
        source = str(getattr(source, "value", source)) if source is not None else None
        key = item.get("key")
        if source == "body" or key == "data":
            strict = _strict_body_error(request)
            if strict is not None:
                return _handle_api_error(request, strict)
            malformed = "malformed" in message.lower() or "JSON is malformed" in message
            err = decode_error_to_api(message, malformed)
            if err.field is None and isinstance(key, str) and key and key != "data":
                err.field = msgspec_path_to_pointer("$." + key) or None
            return _handle_api_error(request, err)
        if source in ("query", "path", "header", "cookie"):
            code = "INVALID_QUERY_PARAM" if source == "query" else "INVALID_PARAMETER"
            text = f"invalid {source} parameter: {humanize(message, f'/{key}')}"
            if "missing" in message.lower():
                text = f"missing required {source} parameter '{key}'"
            pointer = f"/{key}" if key else None
            return error_response(request, 400, code, text, pointer)
    strict = _strict_body_error(request)
    if strict is not None:
        return _handle_api_error(request, strict)
    detail = exc.detail or "invalid request"
    if "JSON" in detail or "decode" in detail.lower():
        return error_response(request, 400, "INVALID_JSON", "request body is not valid JSON")
    return error_response(request, 400, "VALIDATION_ERROR", detail)


def _handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorEnvelope]:
    status = exc.status_code
    if isinstance(exc, NotFoundException):
        return error_response(request, 404, "NOT_FOUND", "no such route or resource")
    if isinstance(exc, MethodNotAllowedException):
        return error_response(
            request, 405, "METHOD_NOT_ALLOWED", str(exc.detail), headers=exc.headers
        )
    if isinstance(exc, NotAuthorizedException):
        return error_response(
            request, 401, "UNAUTHORIZED", str(exc.detail), headers={"WWW-Authenticate": "Bearer"}
        )
    if isinstance(exc, PermissionDeniedException):
        return error_response(request, 403, "FORBIDDEN", str(exc.detail))
    body_unreadable = isinstance(exc, ClientException) and isinstance(
        exc.__cause__, SerializationException | UnicodeDecodeError
    )
    if body_unreadable or (status == 400 and "JSON is malformed" in str(exc.detail)):
        # Litestar could not decode the body at all (malformed JSON, truncated, not UTF-8).
        return error_response(
            request, 400, "INVALID_JSON", f"request body is not valid JSON: {exc.detail}"
        )
    if status == 413:
        return error_response(request, 413, "PAYLOAD_TOO_LARGE", "request body is too large")
    if status == 415:
        return error_response(request, 415, "UNSUPPORTED_MEDIA_TYPE", str(exc.detail))
    if status >= 500:
        return error_response(request, status, "INTERNAL", "internal error")
    code = re.sub(r"[^A-Z0-9]+", "_", str(exc.detail).upper()).strip("_") or "BAD_REQUEST"
    return error_response(request, status, code[:64], str(exc.detail), headers=exc.headers)


def _is_utf8(body: Any) -> bool:
    if not isinstance(body, bytes):
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorEnvelope]:
    if isinstance(exc, UnicodeDecodeError) and not _is_utf8(
        ScopeState.from_scope(request.scope).body
    ):
        # Litestar decodes the body before the handler and lets this one escape.
        return error_response(request, 400, "INVALID_JSON", "request body is not valid UTF-8")
    log.exception("unhandled_error", path=request.url.path, error=repr(exc))
    return error_response(request, HTTP_500_INTERNAL_SERVER_ERROR, "INTERNAL", "internal error")


def _handle_integrity(
    request: Request[Any, Any, Any], exc: pg.IntegrityError
) -> Response[ErrorEnvelope]:
    from control_plane.core.db_errors import translate

    return _handle_api_error(request, translate(exc))


def exception_handlers() -> dict[Any, Any]:
    return {
        ApiError: _handle_api_error,
        pg.IntegrityError: _handle_integrity,
        SpecError: _handle_spec_error,
        ValidationException: _handle_validation,
        HTTPException: _handle_http,
        Exception: _handle_unexpected,
    }
