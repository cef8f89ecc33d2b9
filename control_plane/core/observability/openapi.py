"""``/api/openapi.json``: the OpenAPI 3.1 document, with every error documented as our envelope.

Litestar documents a handler's 400 with its own ``{status_code, detail, extra}`` shape; every error
we answer is ``{"error": {code, message, field, details, trace_id}}``. The render plugin rewrites
each 4xx/5xx response of the document to reference ``ErrorEnvelope`` and adds it as every
operation's ``default`` response. The schema router's catch-all (Litestar answers unknown paths
under the OpenAPI path with an HTML page) is refused by a guard so they get the envelope's 404.

Every status an operation can answer is listed, by one rule for the errors any route can give
(``COMMON_ERRORS``: 400 always, 401 where it is authenticated, 403 on the tenant API (route
permissions), 404 where a path names a
resource, 413 and 415 where it takes a body, 431 always) plus what a handler declares for
itself with ``errors(...)`` (422 ``HEARTBEAT_HAS_NO_REGIONS``, 409 ``REGION_EXISTS``, …). Three
corrections make the schemas say what the app accepts: a ``oneOf`` whose members overlap (an
integer is also a number, so ``int | float`` matched both) becomes an ``anyOf``; a tuple says its
length; and a struct that refuses unknown fields says ``additionalProperties: false``
(``StrictStructSchemaPlugin``).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request, Router
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.connection import ASGIConnection
from litestar.constants import OPENAPI_JSON_HANDLER_NAME
from litestar.exceptions import NotFoundException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Schema
from litestar.typing import FieldDefinition

from control_plane.core.errors import ErrorEnvelope

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

OPENAPI_PATH = "/api"
_REF = "#/components/schemas/{name}"
INVALID_REQUEST = "Invalid request: `error.code` names the problem, `error.field` the input"
_OPERATIONS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


# Errors any operation can answer, by what the operation is (see the module docstring).
COMMON_ERRORS = {
    "401": "[UNAUTHORIZED] missing, unknown or revoked bearer token",
    "403": "[FORBIDDEN] the key's permissions do not cover this action",
    "404": "[NOT_FOUND or the resource's own code] nothing by that id for this caller",
    "413": "[PAYLOAD_TOO_LARGE, BATCH_TOO_LARGE] the body is too large",
    "415": "[UNSUPPORTED_MEDIA_TYPE] a body that is not `application/json` (or `*/*+json`)",
    "429": "[RATE_LIMITED] a per-minute rate budget is spent (`Retry-After`, `details.scope`)",
    "431": "[REQUEST_HEADER_FIELDS_TOO_LARGE] request headers over 16 KiB in all",
}


def errors(**statuses: str) -> dict[int, ResponseSpec]:
    """A handler's own error answers, for its ``responses=``: ``errors(s422="[CODE] why")``."""
    return {
        int(name.removeprefix("s")): ResponseSpec(ErrorEnvelope, description=description)
        for name, description in statuses.items()
    }


def _common_errors(path: str, operation: dict[str, Any], secured: bool) -> list[str]:
    found = ["400", "431"]
    if secured:
        found.append("401")
    if path.startswith("/api/v1/"):
        found.append("403")  # every tenant route declares a permission (core/permissions.py)
        found.append("429")  # the plan's rate budgets (core/ratelimit.py)
    if "{" in path:
        found.append("404")
    if "requestBody" in operation:
        found += ["413", "415"]
    return found


_NUMERIC = frozenset({"integer", "number"})


def _exclusive(members: list[Any]) -> bool:
    """Whether a ``oneOf``'s members can never match the same value, as far as their ``type``
    says (an integer is a number too); members without a plain type are taken as exclusive."""
    types = [m.get("type") for m in members if isinstance(m, dict) and "$ref" not in m]
    plain = [t for t in types if isinstance(t, str)]
    return len(plain) == len(set(plain)) and not _NUMERIC <= set(plain)


def _tighten(node: Any) -> None:
    """An overlapping ``oneOf`` becomes ``anyOf``; a fixed-length tuple (``prefixItems``) says
    its length, as msgspec enforces it (``basic_auth`` is exactly ``["user", "pass"]``)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            members = item.get("oneOf")
            if isinstance(members, list) and not _exclusive(members):
                item["anyOf"] = item.pop("oneOf")
            prefix = item.get("prefixItems")
            if isinstance(prefix, list) and "items" not in item:
                item.update(items=False, minItems=len(prefix), maxItems=len(prefix))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """Litestar's schema of a msgspec struct, plus ``additionalProperties: false`` when the
    struct refuses unknown fields (``forbid_unknown_fields``): the decoder answers
    ``UNKNOWN_FIELD``, and the document must not invite extra properties."""

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        config = getattr(field_definition.type_, "__struct_config__", None)
        if config is not None and config.forbid_unknown_fields:
            schema.additional_properties = False
        return schema


def _envelope_content() -> tuple[dict[str, Any], dict[str, Any]]:
    (ref,), components = msgspec.json.schema_components((ErrorEnvelope,), ref_template=_REF)
    return {"application/json": {"schema": ref}}, components


def with_error_envelope(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` whose error responses all describe the one error envelope."""
    doc = copy.deepcopy(document)
    content, components = _envelope_content()
    doc.setdefault("components", {}).setdefault("schemas", {}).update(components)
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if method not in _OPERATIONS:
                continue
            responses = operation.setdefault("responses", {})
            secured = bool(operation.get("security", doc.get("security")))
            for status in _common_errors(path, operation, secured):
                responses.setdefault(status, {"description": COMMON_ERRORS.get(status, "")})
            operation["responses"] = responses = dict(sorted(responses.items()))
            if any(
                p.get("name") == "format" and p.get("in") == "query"
                for p in operation.get("parameters", [])
            ):
                # ``format=csv`` (core/csv_export.py): the same list as streamed CSV.
                ok = responses.get("200", {}).setdefault("content", {})
                ok["text/csv"] = {"schema": {"type": "string"}}
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
    _tighten(doc)
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
