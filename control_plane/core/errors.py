"""One error envelope for every surface: ``{"error": {code, message, field, details, trace_id}}``.

Routes and services raise ``ApiError`` (or a subclass helper); ``exception_handlers()`` turns it,
Litestar's own HTTP errors, request-decoding failures and anything unexpected into the envelope.
A client mistake is never a 500. How bodies are decoded, and how a decoding failure reads, is
``core/decoding.py`` (imported where used: it builds on ``ApiError``).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import psycopg
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
from psycopg_pool import PoolTimeout

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


def _strict_body_error(request: Request[Any, Any, Any]) -> ApiError | None:
    """Litestar's own body decoding is lenient and drops nested paths from its messages; decode
    the already-read body strictly against the handler's ``data`` type to name the exact field."""
    from control_plane.core.decoding import decode_body

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
    from control_plane.core.decoding import decode_error_to_api, humanize, msgspec_path_to_pointer

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
    if isinstance(exc, RecursionError):
        from control_plane.core.decoding import too_deep, too_deep_error

        if too_deep(ScopeState.from_scope(request.scope).body):
            # Litestar's own decoding of a body nested deeper than msgspec can follow.
            return _handle_api_error(request, too_deep_error())
    log.exception("unhandled_error", path=request.url.path, error=repr(exc))
    return error_response(request, HTTP_500_INTERNAL_SERVER_ERROR, "INTERNAL", "internal error")


def _handle_integrity(
    request: Request[Any, Any, Any], exc: pg.IntegrityError
) -> Response[ErrorEnvelope]:
    from control_plane.core.db_errors import translate

    return _handle_api_error(request, translate(exc))


# How long a client should wait before trying again while a dependency is down.
DEPENDENCY_RETRY_AFTER_S = 5


def _handle_dependency_down(
    request: Request[Any, Any, Any], exc: Exception
) -> Response[ErrorEnvelope]:
    """PostgreSQL unreachable (a broken connection, or none to be had in time): a 503 the
    caller can retry, at once, not a 500 after the pool's wait."""
    log.warning("database_unavailable", path=request.url.path, error=f"{type(exc).__name__}")
    return error_response(
        request,
        503,
        "DEPENDENCY_DOWN",
        "the database is unreachable; try again shortly",
        details={"dependency": "postgres"},
        headers={"Retry-After": str(DEPENDENCY_RETRY_AFTER_S)},
    )


def exception_handlers() -> dict[Any, Any]:
    return {
        ApiError: _handle_api_error,
        pg.IntegrityError: _handle_integrity,
        psycopg.OperationalError: _handle_dependency_down,
        PoolTimeout: _handle_dependency_down,
        SpecError: _handle_spec_error,
        ValidationException: _handle_validation,
        HTTPException: _handle_http,
        Exception: _handle_unexpected,
    }
