"""/api/openapi.json (OpenAPI 3.1, every route described) and Swagger UI at /docs (no CDN)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from litestar import Litestar
from litestar.routes import HTTPRoute

from control_plane.core.observability.docs import ASSET_DIR
from tests.conftest import Persona, assert_error

# The routes that serve the documentation and metrics themselves.
SELF = {"/metrics", "/docs", "/docs/init.js", "/docs/static/{name}", "/api", "/api/openapi.json"}
SCHEMA_CATCH_ALL = "/api/{path}"
# Server-rendered web pages (status pages, share links): not API operations.
HTML_PAGES = {
    "/",
    "/status",
    "/status/incidents/{incident_id}",
    "/status/{slug}",
    "/status/{slug}/incidents/{incident_id}",
    "/m/{token}",
}
ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}


async def openapi(client: Persona) -> dict[str, Any]:
    resp = await client.get("/api/openapi.json")
    assert resp.status_code == 200, resp.text
    assert "json" in resp.headers["content-type"]
    doc: dict[str, Any] = resp.json()
    return doc


def documented_operations(app: Litestar) -> list[tuple[str, str, Any]]:
    """(path template, method, handler) of every route handler on the app, but the docs' own."""
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path_format in SELF | HTML_PAGES | {
            SCHEMA_CATCH_ALL
        }:
            continue
        for method, (handler, _) in route.route_handler_map.items():
            if method == "OPTIONS" and not handler.resolve_include_in_schema():
                continue  # Litestar's automatic preflight handler
            found.append((route.path_format, method.lower(), handler))
    return found


async def test_the_document_is_openapi_3_1(anon: Persona) -> None:
    doc = await openapi(anon)
    assert re.match(r"^3\.1\.\d+$", doc["openapi"]), doc["openapi"]
    assert doc["info"]["title"] == "Vigil API"
    assert set(doc["components"]["securitySchemes"]) >= {"bearer", "operator", "agent"}


async def test_the_document_describes_every_route_on_the_app(app: Litestar, anon: Persona) -> None:
    doc = await openapi(anon)
    operations = documented_operations(app)
    assert operations, "the app registers no routes?"
    missing = [
        f"{method.upper()} {path}"
        for path, method, _ in operations
        if method not in doc["paths"].get(path, {})
    ]
    assert not missing, f"routes missing from /api/openapi.json: {missing}"
    documented = {
        (path, method)
        for path, item in doc["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert documented == {(path, method) for path, method, _ in operations}
    for path in SELF:
        assert path not in doc["paths"]


async def test_every_operation_has_a_unique_id_and_documents_bodies_and_responses(
    app: Litestar, anon: Persona
) -> None:
    doc = await openapi(anon)
    ids: list[str] = []
    problems: list[str] = []
    for path, method, handler in documented_operations(app):
        op = doc["paths"][path][method]
        name = f"{method.upper()} {path}"
        ids.append(op.get("operationId", ""))
        takes_body = handler.parsed_data_field is not None
        if method in ("put", "patch") and not takes_body:
            problems.append(f"{name}: a {method.upper()} that takes no body")
        if takes_body:
            schema = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            if not schema.get("schema"):
                problems.append(f"{name}: request body has no JSON schema")
        successes = {code: r for code, r in op["responses"].items() if code.startswith("2")}
        if not successes:
            problems.append(f"{name}: no 2xx response")
        for code, response in successes.items():
            if code == "204":
                continue
            content = response.get("content") or {}
            if not any(media.get("schema") for media in content.values()):
                problems.append(f"{name}: {code} response has no schema")
        for code, response in op["responses"].items():
            if code[:1] in ("4", "5") or code == "default":
                schemas = [media.get("schema") for media in response["content"].values()]
                if schemas != [ENVELOPE]:
                    problems.append(f"{name}: {code} is not the error envelope: {schemas}")
    assert not problems, problems
    assert all(ids), "operation without operationId"
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, duplicates


async def test_the_error_envelope_schema_matches_what_errors_look_like(anon: Persona) -> None:
    doc = await openapi(anon)
    schemas = doc["components"]["schemas"]
    envelope = schemas["ErrorEnvelope"]
    assert envelope["required"] == ["error"]
    body_ref = envelope["properties"]["error"]["$ref"].rsplit("/", 1)[-1]
    body = schemas[body_ref]
    assert set(body["properties"]) == {"code", "message", "field", "details", "trace_id"}
    resp = await anon.get("/api/v1/targets")
    err = assert_error(resp, 401, "UNAUTHORIZED")
    assert set(err) == set(body["properties"])


async def test_other_paths_under_the_schema_root_are_envelope_404s(anon: Persona) -> None:
    for path in ("/api/swagger", "/api/redoc", "/api/openapi.yaml", "/api/nothing"):
        assert_error(await anon.get(path), 404, "NOT_FOUND")


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


async def test_swagger_ui_page_loads_only_assets_we_serve(anon: Persona) -> None:
    resp = await anon.get("/docs")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    html = resp.text
    assert "http://" not in html and "https://" not in html
    assert "'self'" in resp.headers["content-security-policy"]
    parser = _Refs()
    parser.feed(html)
    assert any(u.endswith("swagger-ui-bundle.js") for u in parser.urls)
    assert any(u.endswith(".css") for u in parser.urls)
    for url in parser.urls:
        assert url.startswith("/"), url
        asset = await anon.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
        # One charset parameter: Litestar adds it to text types, so we must not.
        assert asset.headers["content-type"].count("charset") <= 1, asset.headers
    init = next(u for u in parser.urls if u.endswith("init.js"))
    script = (await anon.get(init)).text
    assert '"/api/openapi.json"' in script
    assert "validatorUrl: null" in script  # no badge fetched from the validator service
    assert "http://" not in script and "https://" not in script


async def test_only_the_swagger_ui_files_are_served(anon: Persona) -> None:
    for name in ("index.html", "swagger-initializer.js", "..%2F__init__.py", "nope.js"):
        assert_error(await anon.get(f"/docs/static/{name}"), 404, "NOT_FOUND")


def test_the_bundled_swagger_ui_renders_openapi_3_1() -> None:
    # Swagger UI 4.x answers "Unable to render this definition" for an `openapi: 3.1.x` document.
    match = re.search(r"swagger-ui-(\d+)\.", ASSET_DIR.name)
    assert match, ASSET_DIR
    assert int(match.group(1)) >= 5
