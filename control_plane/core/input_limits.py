"""Checks every request passes before its handler runs, once for all routes: an app middleware
(headers, query strings) and a guard each router lists after its authentication (bodies).

- **Request headers**: at most ``MAX_HEADER_BYTES`` in all, else ``431
  REQUEST_HEADER_FIELDS_TOO_LARGE``. uvicorn's httptools parser sets no limit of its own; the
  protocols ``vigil serve`` runs (``core/http_protocols.py``) refuse a larger head while it is
  still arriving, and this check holds wherever else the app is served.
- **Query strings**: a NUL (``%00``) in any parameter's name or value is ``400
  INVALID_QUERY_PARAM`` naming the parameter: no text column can store one, and no route has to
  remember to look.
- **Bodies of JSON routes** (a handler that takes ``data``): a non-empty POST, PUT or PATCH body
  whose ``Content-Type`` is not ``application/json`` or ``*/*+json`` is ``415
  UNSUPPORTED_MEDIA_TYPE`` (``json_body_guard``; after authentication, so an anonymous caller
  learns nothing about a route's body). The heartbeat ping routes take no ``data`` (a failure
  report's body is free text) and take any body.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from control_plane.core.errors import ApiError

MAX_HEADER_BYTES = 16 * 1024
"""Request headers, names and values added up: 16 KiB, what uvicorn's h11 parser allows for a
request's head. Bearer tokens and ids are under 200 bytes; a browser's cookies for this origin
are the only thing that could come near, and the API sets none."""

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def header_bytes(headers: Any) -> int:
    return sum(len(name) + len(value) for name, value in headers)


def header_too_large() -> ApiError:
    return ApiError(
        431,
        "REQUEST_HEADER_FIELDS_TOO_LARGE",
        f"request headers must total at most {MAX_HEADER_BYTES} bytes",
    )


def _nul_parameter(query: bytes) -> str | None:
    """The name of the first query parameter holding a NUL (in its name or value), if any."""
    if b"%00" not in query and b"\x00" not in query:
        return None
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        raw_name = unquote_to_bytes(name.replace(b"+", b" "))
        if b"\x00" in raw_name or b"\x00" in unquote_to_bytes(value.replace(b"+", b" ")):
            return raw_name.replace(b"\x00", b"").decode("utf-8", "replace") or "?"
    return None


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (b"/" in media and media.endswith(b"+json"))


def json_body_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """415 for a body that is not JSON on a route that takes a JSON body (see above)."""
    scope = connection.scope
    if scope.get("method") not in BODY_METHODS:
        return
    if getattr(handler, "parsed_data_field", None) is None:
        return  # not a JSON route
    content_type = length = chunked = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
        elif name == b"content-length":
            length = value
        elif name == b"transfer-encoding":
            chunked = value
    has_body = chunked is not None or (length is not None and length.strip() not in (b"", b"0"))
    if has_body and not _is_json(content_type):
        shown = content_type.decode("latin-1")[:100] if content_type is not None else "none"
        raise ApiError(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            f"the body must be JSON (Content-Type: application/json), got {shown}",
            details={"accepted": ["application/json", "*/*+json"]},
        )


def input_limits_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            if header_bytes(scope["headers"]) > MAX_HEADER_BYTES:
                raise header_too_large()
            name = _nul_parameter(scope.get("query_string", b""))
            if name is not None:
                raise ApiError(
                    400,
                    "INVALID_QUERY_PARAM",
                    f"query parameter '{name}' contains a NUL character",
                    f"/{name}",
                )
        await app(scope, receive, send)

    return middleware
