"""``/api/openapi.json``: the OpenAPI 3.1 document, with every error documented as our envelope.

Litestar documents a handler's 400 with its own ``{status_code, detail, extra}`` shape; every error
we answer is ``{"error": {code, message, field, details, trace_id}}``. The render plugin rewrites
each 4xx/5xx response of the document to reference ``ErrorEnvelope`` and adds it as every
operation's ``default`` response. The schema router's catch-all (Litestar answers unknown paths
under the OpenAPI path with an HTML page) is refused by a guard so they get the envelope's 404.
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec
from litestar import Request, Router
from litestar.connection import ASGIConnection
from litestar.constants import OPENAPI_JSON_HANDLER_NAME
from litestar.exceptions import NotFoundException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.plugins import JsonRenderPlugin

from control_plane.core.errors import ErrorEnvelope

OPENAPI_PATH = "/api"
_REF = "#/components/schemas/{name}"
INVALID_REQUEST = "Invalid request: `error.code` names the problem, `error.field` the input"
_OPERATIONS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def _envelope_content() -> tuple[dict[str, Any], dict[str, Any]]:
    (ref,), components = msgspec.json.schema_components((ErrorEnvelope,), ref_template=_REF)
    return {"application/json": {"schema": ref}}, components


def with_error_envelope(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` whose error responses all describe the one error envelope."""
    doc = copy.deepcopy(document)
    content, components = _envelope_content()
    doc.setdefault("components", {}).setdefault("schemas", {}).update(components)
    for item in doc.get("paths", {}).values():
        for method, operation in item.items():
            if method not in _OPERATIONS:
                continue
            responses = operation.setdefault("responses", {})
            for code, response in responses.items():
                if code[:1] in ("4", "5"):
                    response["content"] = copy.deepcopy(content)
                if code == "400":
                    response["description"] = INVALID_REQUEST
            responses.setdefault(
                "default",
                {
                    "description": "Error: the one envelope; `error.code` is stable",
                    "content": copy.deepcopy(content),
                },
            )
    return doc


class EnvelopeJsonRenderPlugin(JsonRenderPlugin):
    """Serves ``<openapi path>/openapi.json`` with error responses rewritten to the envelope."""

    def __init__(self) -> None:
        super().__init__(path="/openapi.json")
        self._cached: tuple[dict[str, Any], bytes] | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        # Litestar hands over the same dict until the route set changes.
        if self._cached is None or self._cached[0] is not openapi_schema:
            self._cached = (
                openapi_schema,
                self.render_json(request, with_error_envelope(openapi_schema)),
            )
        return self._cached[1]


def _only_the_document(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    if handler.name != OPENAPI_JSON_HANDLER_NAME:
        raise NotFoundException()


def openapi_router(path: str = OPENAPI_PATH) -> Router:
    """The router Litestar mounts the OpenAPI document on (pass as ``openapi_router``)."""
    return Router(
        path=path, route_handlers=[], include_in_schema=False, guards=[_only_the_document]
    )
