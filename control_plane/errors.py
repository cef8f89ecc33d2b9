"""One error envelope for every surface: ``{"error": {code, message, field, details, trace_id}}``.

Routes and services raise ``ApiError`` (or a subclass helper); ``exception_handlers()`` turns it,
Litestar's own HTTP errors, request-decoding failures and anything unexpected into the envelope.
A client mistake is never a 500.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

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
    return Response(body, status_code=status, headers=headers, media_type="application/json")


# msgspec reports locations as ``$.check.port`` or ``$.tags[2]``; we answer with a JSON pointer.
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")


def msgspec_path_to_pointer(path: str) -> str:
    parts = []
    for m in _PATH_PART.finditer(path):
        name, index = m.group(1), m.group(2)
        if name is not None:
            parts.append(name.replace("~", "~0").replace("/", "~1"))
        elif index is not None:
            parts.append(index)
    return "/" + "/".join(parts) if parts else ""


def decode_error_to_api(message: str, malformed: bool = False) -> ApiError:
    """Map a msgspec decode/validation message to the envelope's code and field."""
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
        field = f"{field or ''}/{name}"
        return ApiError(400, "UNKNOWN_FIELD", f"unknown field '{name}'", field)
    missing = re.match(r"Object missing required field `([^`]+)`", message)
    if missing:
        name = missing.group(1)
        field = f"{field or ''}/{name}"
        return ApiError(400, "MISSING_FIELD", f"required field '{name}' is missing", field)
    return ApiError(400, "VALIDATION_ERROR", message, field)


def decode_body(body: bytes, type_: type[Any]) -> Any:
    """Decode a JSON request body into ``type_`` or raise the envelope's 400."""
    if not body.strip():
        raise ApiError(400, "INVALID_JSON", "request body is empty; a JSON object is required")
    try:
        return msgspec.json.decode(body, type=type_, strict=True)
    except msgspec.ValidationError as exc:
        raise decode_error_to_api(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise decode_error_to_api(str(exc), malformed=True) from None


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
        key = item.get("key")
        if source == "body" or key == "data":
            malformed = "malformed" in message.lower() or "JSON is malformed" in message
            err = decode_error_to_api(message, malformed)
            if err.field is None and isinstance(key, str) and key and key != "data":
                err.field = msgspec_path_to_pointer("$." + key) or None
            return _handle_api_error(request, err)
        if source in ("query", "path", "header", "cookie"):
            code = "INVALID_QUERY_PARAM" if source == "query" else "INVALID_PARAMETER"
            text = f"invalid {source} parameter '{key}': {message}"
            if "missing" in message.lower():
                text = f"missing required {source} parameter '{key}'"
            pointer = f"/{key}" if key else None
            return error_response(request, 400, code, text, pointer)
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
    if status == 400 and "JSON is malformed" in str(exc.detail):
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


def _handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorEnvelope]:
    log.exception("unhandled_error", path=request.url.path, error=repr(exc))
    return error_response(request, HTTP_500_INTERNAL_SERVER_ERROR, "INTERNAL", "internal error")


def exception_handlers() -> dict[Any, Any]:
    return {
        ApiError: _handle_api_error,
        SpecError: _handle_spec_error,
        ValidationException: _handle_validation,
        HTTPException: _handle_http,
        Exception: _handle_unexpected,
    }
